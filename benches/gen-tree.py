"""gen-tree.py ROOT MB: a 10k-file tree of MB megabytes, half compressible text, half random
(seeded, so every run and every bench packs the same bytes)."""
import os, sys, random
root, mb = sys.argv[1], int(sys.argv[2]); files = 10000; per = mb * 1024 * 1024 // files
rnd = random.Random(1)
for i in range(files):
    d = os.path.join(root, "d%03d" % (i % 100)); os.makedirs(d, exist_ok=True)
    out = bytearray()
    while len(out) < per:
        if (len(out) // 4096) % 2 == 0:
            out += b"line %d of file %d with some repeated words words words\n" % (len(out), i)
        else:
            out += rnd.randbytes(4096)
    open(os.path.join(d, "f%d" % i), "wb").write(out[:per])
