#!/usr/bin/env bash
# Builds the hostile-path test set in DIR (used by test_hostile_paths.sh):
#   DIR/root/               the manifest's folder (the default allowed root)
#   DIR/root/good/*.jpg     real images (copied from SRC, a folder of JPEGs)
#   DIR/root/special/       a FIFO, a directory, a socket, links to each and to
#                           /dev/zero, a sparse file over the size limit, a
#                           link to a file outside and one to the outside folder
#   DIR/outside/secret.jpg  a copy of a good image outside the root: escapes
#                           (.., absolute, links, %2e%2e) point at it
#   DIR/root/hostile.jsonl  one line per good image, then one per hostile entry
#   DIR/root/expect.tsv     id <TAB> words the reason for that line must hold
# A socket needs a live listener only to be created; the file stays a socket.
set -euo pipefail
DIR=$1 SRC=$2
mkdir -p "$DIR/root/good" "$DIR/root/special/dir" "$DIR/outside"
cp "$SRC"/*.jpg "$DIR/root/good/"
sp=$DIR/root/special
mkfifo "$sp/fifo.jpg"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$sp/sock.jpg"
ln -s "$sp/fifo.jpg" "$sp/to-fifo.jpg"
ln -s /dev/zero "$sp/to-zero.jpg"
ln -s "$sp/dir" "$sp/to-dir.jpg"
ln -s "$sp/sock.jpg" "$sp/to-sock.jpg"
truncate -s 300M "$sp/huge.jpg"           # sparse: over the 256 MiB limit, costs no disk
cp "$(ls "$DIR"/root/good/*.jpg | head -1)" "$DIR/outside/secret.jpg"
ln -s "$DIR/outside/secret.jpg" "$sp/out-link.jpg"
ln -s "$DIR/outside" "$sp/out-dir"
m=$DIR/root/hostile.jsonl e=$DIR/root/expect.tsv
: > "$m"; : > "$e"
for f in "$DIR"/root/good/*.jpg; do
    printf '{"image":"good/%s","prompt":"hostile","id":"%s"}\n' "$(basename "$f")" \
        "$(basename "$f" .jpg)" >> "$m"
done
bad() { # id image reason-words
    printf '{"image":"%s","prompt":"hostile","id":"%s"}\n' "$2" "$1" >> "$m"
    printf '%s\t%s\n' "$1" "$3" >> "$e"
}
bad fifo special/fifo.jpg "is a FIFO (named pipe), not a regular file"
bad dir special/dir "is a directory"
bad sock special/sock.jpg "is a socket"
bad to-fifo special/to-fifo.jpg "is a FIFO"
bad to-zero special/to-zero.jpg "outside the allowed roots"   # /dev/zero: checked first
bad to-dir special/to-dir.jpg "is a directory"
bad to-sock special/to-sock.jpg "is a socket"
bad huge special/huge.jpg "over the limit of 268435456"
out="outside the allowed roots"
bad dotdot ../outside/secret.jpg "$out"
bad deep-dotdot good/../../outside/secret.jpg "$out"
bad absolute "$DIR/outside/secret.jpg" "$out"
bad etc /etc/passwd "$out"
bad out-link special/out-link.jpg "$out"
bad out-dir special/out-dir/secret.jpg "$out"
bad pct-dotdot "file://$DIR/root/%2e%2e/outside/secret.jpg" "$out"
bad pct-slash "file://$DIR/root/..%2Foutside/secret.jpg" "encoded '/'"
bad gone-dotdot nodir/../../outside/secret.jpg "$out"
# NUL (\u0000) in every string field, and whitespace JSON does not allow: a
# bad line each, never a value cut at the NUL (which here would name a good
# image). An id holding NUL is written "\u0000" in expect.tsv.
raw() { # id line reason-words
    printf '%s\n' "$2" >> "$m"
    printf '%s\t%s\n' "$1" "$3" >> "$e"
}
g=good/$(basename "$(ls "$DIR"/root/good/*.jpg | head -1)")
p='"prompt":"hostile"'
raw nul-image "{\"image\":\"$g\\u0000../../outside/secret.jpg\",$p,\"id\":\"nul-image\"}" 'field "image": contains NUL'
raw nul-prompt "{\"image\":\"$g\",\"prompt\":\"hostile\\u0000 and more\",\"id\":\"nul-prompt\"}" 'field "prompt": contains NUL'
raw nul-prompt-id "{\"image\":\"$g\",\"prompt_id\":\"g\\u0000\",\"id\":\"nul-prompt-id\"}" 'field "prompt_id": contains NUL'
raw nul-model "{\"image\":\"$g\",$p,\"model\":\"m\\u0000\",\"id\":\"nul-model\"}" 'field "model": contains NUL'
raw 'nul-id\u0000' "{\"image\":\"$g\",$p,\"id\":\"nul-id\\u0000\"}" 'field "id": contains NUL'
raw nul-meta "{\"image\":\"$g\",$p,\"seed\":{\"a\":[\"\\u0000\"]},\"id\":\"nul-meta\"}" 'field "seed": contains NUL'
raw nul-key "{\"image\":\"$g\",$p,\"k\\u0000\":1,\"id\":\"nul-key\"}" 'a field name contains NUL'
raw form-feed "$(printf '\f'){\"image\":\"$g\",$p,\"id\":\"form-feed\"}" 'form feed (0x0c)'
raw vtab "{\"image\":\"$g\",$(printf '\v')$p,\"id\":\"vtab\"}" 'vertical tab (0x0b)'
raw nbsp "{\"image\":\"$g\",$p,\"id\":\"nbsp\"}$(printf '\302\240')" 'non-ASCII character'
