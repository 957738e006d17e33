"""A PNG and Netpbm (PGM/PPM) decoder in zlib + NumPy, so no imaging library is needed.

PNG: non-interlaced, gray / gray+alpha / RGB / RGBA at 8 or 16 bits, gray at
1, 2 or 4 bits, and palette images; every chunk's CRC is checked. The five
row filters are undone along anti-diagonals of the image: pixel (r, c) depends
only on its left, upper and upper-left neighbours, which all lie on the two
previous diagonals, so each diagonal is one vectorized step (H + W steps).
"""
import struct
import zlib

import numpy as np

from graphc.data.errors import DataError

__all__ = ["decode_png", "decode_netpbm", "PNG_SIGNATURE"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}      # colour type -> samples per pixel
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


class UnsupportedImage(DataError):
    """A valid image in a variant this decoder does not read (e.g. interlaced PNG)."""


def _chunks(data, path):
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc_bytes = data[pos + 8 + length:pos + 12 + length]
        if len(body) < length or len(crc_bytes) < 4:
            raise DataError(f"{path}: truncated PNG ({kind!r} chunk cut short)")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc_bytes)[0]:
            raise DataError(f"{path}: corrupt PNG (CRC mismatch in the {kind!r} chunk)")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise DataError(f"{path}: truncated PNG (no IEND chunk)")


def _header(body, path):
    if len(body) != 13:
        raise DataError(f"{path}: corrupt PNG (IHDR of {len(body)} bytes, expected 13)")
    width, height, depth, color, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", body)
    if color not in _CHANNELS or depth not in _DEPTHS[color] or compression or filtering:
        raise DataError(f"{path}: corrupt PNG (bit depth {depth} with colour type {color})")
    if width == 0 or height == 0:
        raise DataError(f"{path}: corrupt PNG (size {width}x{height})")
    if interlace:
        raise UnsupportedImage(f"{path}: interlaced (Adam7) PNG is not supported without "
                               f"Pillow; save it non-interlaced")
    return width, height, depth, color


def _paeth(a, b, c):
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter_rows(filtered, filters):
    """Undo filters None, Sub and Up, which need no left-and-up recurrence: row by row."""
    out = np.empty_like(filtered)
    previous = np.zeros(filtered.shape[1:], np.uint8)
    for r, kind in enumerate(filters):
        row = filtered[r]
        if kind == 1:
            row = np.cumsum(row, axis=0, dtype=np.uint8)       # wraps modulo 256
        elif kind == 2:
            row = row + previous
        out[r] = previous = row
    return out


def unfilter(filtered, filters, bpp):
    """Undo PNG row filters: `filtered` (H, W, bpp) bytes, `filters` (H,) types 0-4."""
    if filters.max() <= 2:
        return _unfilter_rows(filtered, filters)
    height, width, _ = filtered.shape
    x = np.zeros((height + 1, width + 1, bpp), np.int32)    # a zero row above, column left
    raw = filtered.astype(np.int32)
    kinds = filters.astype(np.int32)[:, None]
    for k in range(height + width - 1):
        r = np.arange(max(0, k - width + 1), min(height, k + 1))
        c = k - r
        left, up, upleft = x[r + 1, c], x[r, c + 1], x[r, c]
        kind = kinds[r]
        predicted = np.where(kind == 1, left, np.where(kind == 2, up, np.where(
            kind == 3, (left + up) >> 1, np.where(kind == 4, _paeth(left, up, upleft), 0))))
        x[r + 1, c + 1] = (raw[r, c] + predicted) & 0xFF
    return x[1:, 1:].astype(np.uint8)


def _unpack_bits(rows, depth, width):
    bits = np.unpackbits(rows, axis=1).reshape(rows.shape[0], -1, depth)
    weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
    return (bits * weights).sum(axis=2, dtype=np.uint8)[:, :width]


def _pixels(data, width, height, depth, color, path):
    channels = _CHANNELS[color]
    bits_per_pixel = depth * channels
    stride = (width * bits_per_pixel + 7) // 8
    bpp = max(1, bits_per_pixel // 8)
    expected = height * (stride + 1)
    if len(data) != expected:
        raise DataError(f"{path}: corrupt PNG (image data of {len(data)} bytes, a "
                        f"{width}x{height} image needs {expected})")
    rows = np.frombuffer(data, np.uint8).reshape(height, stride + 1)
    filters = rows[:, 0]
    if filters.max() > 4:
        raise DataError(f"{path}: corrupt PNG (row filter type {filters.max()})")
    rows = unfilter(rows[:, 1:].reshape(height, stride // bpp, bpp), filters, bpp)
    rows = rows.reshape(height, stride)
    if depth < 8:
        return _unpack_bits(rows, depth, width)[:, :, None]
    if depth == 16:
        return rows.view(">u2").astype(np.uint16).reshape(height, width, channels)
    return rows.reshape(height, width, channels)


def decode_png(data, path="<png>"):
    """(H, W, C) uint8 or uint16 pixels of a PNG, C = 1, 2, 3 or 4 (palette -> RGB(A));
    1-, 2- and 4-bit gray is scaled up to 8 bits."""
    if not data.startswith(PNG_SIGNATURE):
        raise DataError(f"{path}: not a PNG file (bad signature)")
    header, idat, palette = None, [], None
    for kind, body in _chunks(data, path):
        if kind == b"IHDR":
            header = _header(body, path)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
    if header is None or not idat:
        raise DataError(f"{path}: corrupt PNG (no {'IHDR' if header is None else 'IDAT'} chunk)")
    width, height, depth, color = header
    try:
        data = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise DataError(f"{path}: corrupt PNG image data ({e})") from None
    pixels = _pixels(data, width, height, depth, color, path)
    if color == 3:
        if palette is None or pixels.max() >= len(palette):
            raise DataError(f"{path}: corrupt PNG (palette missing or too short)")
        return palette[pixels[:, :, 0]]
    if color == 0 and depth < 8:
        pixels = pixels * np.uint8(255 // (2 ** depth - 1))
    return pixels


def _netpbm_header(data, path):
    """The 4 header fields (magic, width, height, maxval) and where the pixels start."""
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and (data[pos:pos + 1].isspace() or data[pos:pos + 1] == b"#"):
            if data[pos:pos + 1] == b"#":
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end
            pos += 1
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace() and data[pos:pos + 1] != b"#":
            pos += 1
        if start == pos:
            raise DataError(f"{path}: truncated PGM/PPM header")
        fields.append(data[start:pos])
    return fields, pos + 1                    # one whitespace byte ends the header


def decode_netpbm(data, path="<pnm>"):
    """(H, W, C) uint8 or uint16 pixels of a PGM (P2/P5, C=1) or PPM (P3/P6, C=3),
    and the maxval they are relative to."""
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise UnsupportedImage(f"{path}: Netpbm type {magic.decode('latin-1')!r} is not "
                               f"supported (only P2, P3, P5 PGM and P6 PPM)")
    fields, start = _netpbm_header(data, path)
    try:
        width, height, maxval = (int(f) for f in fields[1:])
    except ValueError:
        raise DataError(f"{path}: corrupt PGM/PPM header {fields}") from None
    if not (width > 0 and height > 0 and 0 < maxval < 65536):
        raise DataError(f"{path}: corrupt PGM/PPM header (size {width}x{height}, "
                        f"maxval {maxval})")
    channels = 3 if magic in (b"P3", b"P6") else 1
    count = width * height * channels
    if magic in (b"P2", b"P3"):
        values = np.array(data[start:].split()[:count], dtype=np.int64)
    else:
        dtype = np.dtype(">u2" if maxval > 255 else "u1")
        values = np.frombuffer(data[start:start + count * dtype.itemsize], dtype)
    if values.size < count:
        raise DataError(f"{path}: truncated PGM/PPM ({values.size} of {count} values)")
    if values.max() > maxval:
        raise DataError(f"{path}: corrupt PGM/PPM (a value above maxval {maxval})")
    dtype = np.uint16 if maxval > 255 else np.uint8
    return values.astype(dtype).reshape(height, width, channels), maxval
