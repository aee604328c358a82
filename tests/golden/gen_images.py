"""Writes tiny PNG files with known pixel values for tests/data/test_image_io.cpp.

The PNG encoder here is written from the PNG specification (W3C PNG 2nd ed., chunks IHDR/IDAT/IEND,
filter type 0, zlib-compressed scanlines) so the expected pixel values are the arrays below, not the
output of the decoder under test. Pixel value formulas are restated in the C++ test.
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "images")


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(path, width, height, bit_depth, color_type, rows):
    """rows: list of bytes, one per scanline (already packed samples)."""
    raw = b"".join(b"\x00" + r for r in rows)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9))
    data += chunk(b"IEND", b"")
    with open(os.path.join(OUT, path), "wb") as f:
        f.write(data)
    return data


os.makedirs(OUT, exist_ok=True)
W, H = 5, 3
# gray8: value = 10*r + 40*c (r row, c col)
png("gray8.png", W, H, 8, 0, [bytes(10 * r + 40 * c for c in range(W)) for r in range(H)])
# gray16: value = 1000*r + 12345*c + 7 (big-endian samples)
png("gray16.png", W, H, 16, 0,
    [b"".join(struct.pack(">H", 1000 * r + 12345 * c + 7) for c in range(W)) for r in range(H)])
# rgb8: R = 50*c, G = 100*r, B = 255 - 50*c
png("rgb8.png", W, H, 8, 2,
    [b"".join(bytes((50 * c, 100 * r, 255 - 50 * c)) for c in range(W)) for r in range(H)])
# rgba8: the rgb8 pixels with alpha 128
data = png("rgba8.png", W, H, 8, 6,
           [b"".join(bytes((50 * c, 100 * r, 255 - 50 * c, 128)) for c in range(W)) for r in range(H)])
# truncated: the rgba file cut in the middle of IDAT
with open(os.path.join(OUT, "truncated.png"), "wb") as f:
    f.write(data[: len(data) // 2])
# not an image
with open(os.path.join(OUT, "not_an_image.png"), "wb") as f:
    f.write(b"this is plain text, not a PNG\n")
