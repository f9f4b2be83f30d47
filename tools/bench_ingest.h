/* `joust bench ingest`: manifest lines per second, side by side in one run
 * with the limits below it on the same file:
 *   read    getline over the file, lines split and counted (the bare limit
 *           of reading it);
 *   cjson   read + cJSON_ParseWithLength of every line (what parsing a line
 *           with the stack's JSON library costs, nothing else);
 *   parse   read + manifest_parse_line (joust's parser: fields checked,
 *           metadata kept);
 *   ingest  joust_ingest_with into a fresh store: parse, resolve and confine
 *           the image paths, index lookups, records, synced batched writes.
 * The manifest is synthetic (ids, prompt text, model, latent, two metadata
 * fields) with image files that do not exist (like `bench scale`); with
 * --files F, a second manifest of F lines names F real files of 16 KiB,
 * ingested with one parser thread and with the default count, which
 * measures the content hashing in parallel with parsing.
 * Prints wall and CPU seconds per phase and lines/s, and the ratios.
 * Returns a process exit status (0 ok, 1 failed, 2 usage). */
#ifndef JOUST_BENCH_INGEST_H
#define JOUST_BENCH_INGEST_H

int joust_bench_ingest_main(int argc, char **argv);

#endif
