"""Checks `clip serve` with the official `openai` Python client, unchanged: starts the given
`clip` binary on a free loopback port with random weights and an API key, calls
`client.embeddings.create(model=..., input=[...])` (the client's default base64 encoding,
and float), an image item, the client's error for a wrong key and a bad request, then stops
the server with SIGTERM and checks it exits cleanly. CI runs it (.ci/run).

Usage: python3 tools/serve_openai_check.py path/to/clip

Not here: numerics (the Rust tests compare the service with the library bit for bit).
"""

import base64
import math
import signal
import struct
import subprocess
import sys
import time
import zlib

import openai


def png(width, height):
    """A small RGB PNG of a gradient, made with the standard library."""
    rows = b"".join(
        b"\x00" + bytes((x * 5 + y * 3 + c * 70) % 256 for x in range(width) for c in range(3))
        for y in range(height)
    )

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def main():
    binary = sys.argv[1]
    key = "ci-check-key"
    server = subprocess.Popen(
        [binary, "serve", "--random-weights", "--port", "0", "--api-key", key, "--threads", "2"],
        stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert "http://" in line, f"no address in {line!r}"
        base = line.split("http://")[1].split()[0]
        client = openai.OpenAI(base_url=f"http://{base}/v1", api_key=key, max_retries=0)

        start = time.time()
        r = client.embeddings.create(model="clip-vit-base-patch32",
                                     input=["a photo of a cat", "a diagram"])
        assert len(r.data) == 2 and [d.index for d in r.data] == [0, 1], r
        for d in r.data:
            assert len(d.embedding) == 512, len(d.embedding)
            norm = math.sqrt(sum(v * v for v in d.embedding))
            assert abs(norm - 1) < 1e-4, norm
        assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens, r.usage

        f = client.embeddings.create(model="any-name", input="a photo of a cat",
                                     encoding_format="float")
        assert f.data[0].embedding == r.data[0].embedding, "float and base64 differ"

        url = "data:image/png;base64," + base64.b64encode(png(64, 48)).decode()
        img = client.embeddings.create(model="clip", input=[{"image": url}, "a cat"])
        assert len(img.data) == 2 and len(img.data[0].embedding) == 512, img

        try:
            openai.OpenAI(base_url=f"http://{base}/v1", api_key="wrong",
                          max_retries=0).embeddings.create(model="clip", input="x")
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError as e:
            assert e.status_code == 401, e

        try:
            client.embeddings.create(model="clip", input=[{"image": "https://example.invalid/a.jpg"}])
            raise AssertionError("a remote URL was accepted")
        except openai.BadRequestError as e:
            assert "not fetched" in str(e), e
        elapsed = time.time() - start
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    assert code == 0, f"clip serve exited with {code}"
    print(f"openai {openai.__version__} client against clip serve: 5 checks passed "
          f"in {elapsed:.1f} s; server stopped cleanly")


if __name__ == "__main__":
    main()
