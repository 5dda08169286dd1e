#!/usr/bin/env bash
# Run a representative subset of the tests under valgrind memcheck, against
# the cattn installed in the current environment, and fail on any invalid
# access, uninitialised use or definite leak whose stack passes through
# cattn.  (CPython, numpy and ld.so report their own well-known records
# without a suppression file; those are counted, not judged.)  valgrind
# emulates no AVX-512, so the kernels run their AVX2 paths (the portable
# ones, the same C with other tiles, run under ASan in tools/sanitize.sh
# with the kernels' test modules).
#
#   tools/valgrind.sh [pytest -k expression]
set -euo pipefail
cd "$(dirname "$0")/.."
# About 35 tests in the modules below (collecting the rest would cost more
# than running these: valgrind runs Python some 50x slower): each row
# kernel's vector tails (lengths 1, 17, 1025), the attention tiles
# (causal, edge shapes), the decode rows, 16-bit and int8 readers, varlen,
# paged and per-row lengths, sparse attention's listed keys on pages and
# packed sequences, at AVX2 (the level valgrind emulates).
files="softmax attention storage16 quant varlen matmul paged lengths sparse"
expr="${1:-((float32 and avx2) and ((test_rows_match_reference and (-1- or -17- or -1025-)) or (test_shapes_and_causal and ((True and (5-9 or 130-257 or 1-3000)) or bottom_right-5-9)) or test_edge_tiles_sweep or test_few_rows)) or (avx2 and ((test_sdpa_equals_float32_rounded_once and 33x45) or (test_sdpa_on_int8_kv and 3x200) or (test_sdpa_on_int8_kv and 40x300))) or (avx2 and float32 and ((test_varlen_matches_sequences and decode) or (test_matches_gathered_reference and (16-1 or 5-9)) or (test_matches_reference_whatever_the_padding_holds and 37))) or (avx2 and ((test_paged_cache_with_indices and float32) or test_packed_sequences_with_indices))}"
log="$(mktemp)"
PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite --num-callers=40 --log-file="$log" \
    python -m pytest -q -p no:cacheprovider -k "$expr" \
        $(printf 'tests/test_%s.py ' $files)
python - "$log" <<'PY'
import re, sys
blocks, cur = [], []
for line in open(sys.argv[1]):
    m = re.match(r"==\d+== ?(.*)", line.rstrip("\n"))
    if not m:
        continue
    if m.group(1):
        cur.append(m.group(1))
    elif cur:
        blocks.append(cur)
        cur = []
blocks.append(cur)
kinds = ("Invalid", "uninitialised", "definitely lost", "Mismatched", "free()")
errors = [b for b in blocks if b and any(k in b[0] for k in kinds)]
ours = [b for b in errors if any("cattn" in f or "_kernels" in f for f in b)]
print(f"valgrind memcheck: {len(errors)} error/leak records, "
      f"{len(ours)} with a cattn frame")
for b in ours[:10]:
    print("\n".join(b[:15]) + "\n---")
sys.exit(1 if ours else 0)
PY
