/* The reader the fast decoders share (wire_result.c, wire_job.c): the
 * protobuf wire format of the canonical messages joust sends, with each
 * step refusing (0) whatever protobuf-c would read differently or refuse,
 * so that the decoder can leave the body to protobuf-c. Internal to
 * proto/. */
#ifndef JOUST_WIRE_RD_H
#define JOUST_WIRE_RD_H
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

typedef struct {
    const uint8_t *p, *end;
} rd;

/* A varint of at most 10 bytes whose value fits 64 bits; 0 otherwise. */
static inline int varint(rd *r, uint64_t *v, int *nbytes)
{
    uint64_t x = 0;
    for (int i = 0; i < 10 && r->p < r->end; i++) {
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return 0;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            *nbytes = i + 1;
            return 1;
        }
    }
    return 0;
}

/* protobuf-c reads a uint32 from a varint's first five bytes: taken only
 * when that is the whole value. */
static inline int u32(rd *r, uint32_t *out)
{
    uint64_t v;
    int n;
    if (!varint(r, &v, &n) || n > 5 || v > UINT32_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* Enums: declared values only (validation decides what they mean). */
static inline int enum_of(rd *r, const ProtobufCEnumDescriptor *d, int *out)
{
    uint32_t v;
    if (!u32(r, &v) || v > INT32_MAX || !protobuf_c_enum_descriptor_get_value(d, (int)v))
        return 0;
    *out = (int)v;
    return 1;
}

/* A fixed64 field's double: little-endian IEEE 754, as on the wire. */
static inline int f64(rd *r, double *out)
{
    if (r->end - r->p < 8)
        return 0;
    uint64_t v;
    memcpy(&v, r->p, 8);
    memcpy(out, &v, 8);
    r->p += 8;
    return 1;
}

/* A length-delimited field's bytes. */
static inline int bytes(rd *r, rd *out)
{
    uint64_t n;
    int nb;
    if (!varint(r, &n, &nb) || n > (uint64_t)(r->end - r->p))
        return 0;
    out->p = r->p;
    out->end = r->p + n;
    r->p += n;
    return 1;
}

/* A string copied NUL-terminated into the block (as protobuf-c copies it). */
static inline int string(rd *r, char **strs, char **out)
{
    rd s;
    if (!bytes(r, &s))
        return 0;
    size_t n = (size_t)(s.end - s.p);
    memcpy(*strs, s.p, n);
    (*strs)[n] = '\0';
    *out = *strs;
    *strs += n + 1;
    return 1;
}

/* The next field's number and wire type; 0 at the end or on a bad tag. */
static inline int tag(rd *r, uint32_t *field, int *wt)
{
    uint64_t t;
    int n;
    if (r->p >= r->end || !varint(r, &t, &n) || n > 5 || (t >> 3) == 0 || t > UINT32_MAX)
        return 0;
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    return 1;
}

#endif
