"""PNG / PGM / PPM / .npy decoding (files written here) and ImageFolder."""
import importlib.util
import struct
import zlib

import numpy as np
import pytest

from graphc.data import DataError, DataLoader, ImageFolder, decode_netpbm, decode_png, load_image

HAS_PILLOW = importlib.util.find_spec("PIL") is not None


def paeth(a, b, c):
    """The PNG specification's Paeth predictor, one byte at a time."""
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filter_row(kind, row, previous, bpp):
    """The bytes PNG stores for `row` under filter `kind` (plain loops, as the spec)."""
    out = []
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = previous[i]
        c = previous[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predictor) % 256)
    return bytes([kind] + out)


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(pixels, color, depth=8, filters=(0, 1, 2, 3, 4), palette=None, interlace=0):
    """A PNG of `pixels` (H, W, C) or, for depth < 8, of packed rows (H, bytes)."""
    pixels = np.asarray(pixels)
    height = pixels.shape[0]
    if depth == 16:
        rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8)
    else:
        rows = pixels.astype(np.uint8).reshape(height, -1)
    width = pixels.shape[1] if depth >= 8 else rows.shape[1] * 8 // depth
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bpp = max(1, channels * depth // 8)
    previous, data = [0] * rows.shape[1], b""
    for r, row in enumerate(rows.tolist()):
        data += filter_row(filters[r % len(filters)], row, previous, bpp)
        previous = row
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    body = chunk(b"IHDR", header)
    if palette is not None:
        body += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


rng = np.random.default_rng(0)


@pytest.mark.parametrize("color, channels", [(0, 1), (4, 2), (2, 3), (6, 4)])
@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
def test_png_each_filter_and_colour_type_decodes_exactly(color, channels, kind):
    pixels = rng.integers(0, 256, (6, 7, channels))
    decoded = decode_png(encode_png(pixels, color, filters=(kind,)))
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, pixels)


def test_png_mixed_filters_16_bit_palette_and_1_bit():
    pixels = rng.integers(0, 65536, (9, 5, 3))
    np.testing.assert_array_equal(decode_png(encode_png(pixels, 2, depth=16)), pixels)
    palette = rng.integers(0, 256, (4, 3))
    indices = rng.integers(0, 4, (5, 6, 1))
    np.testing.assert_array_equal(decode_png(encode_png(indices, 3, palette=palette)),
                                  palette[indices[:, :, 0]])
    bits = rng.integers(0, 2, (4, 16))
    packed = np.packbits(bits, axis=1)
    np.testing.assert_array_equal(decode_png(encode_png(packed, 0, depth=1))[:, :, 0], bits * 255)


def test_png_corruption_is_reported_with_the_file_name():
    good = encode_png(rng.integers(0, 256, (4, 4, 1)), 0)
    bad_crc = bytearray(good)
    bad_crc[40] ^= 0xFF                                   # inside the IDAT chunk
    with pytest.raises(DataError, match=r"x\.png: corrupt PNG \(CRC mismatch"):
        decode_png(bytes(bad_crc), "x.png")
    with pytest.raises(DataError, match=r"x\.png: truncated PNG"):
        decode_png(good[:-20], "x.png")
    with pytest.raises(DataError, match=r"x\.png: not a PNG"):
        decode_png(b"GIF89a...", "x.png")


@pytest.mark.skipif(HAS_PILLOW, reason="Pillow is installed, so it reads interlaced PNGs")
def test_interlaced_png_without_pillow_names_the_file(tmp_path):
    path = tmp_path / "lace.png"
    path.write_bytes(encode_png(rng.integers(0, 256, (4, 4, 1)), 0, interlace=1))
    with pytest.raises(DataError, match=r"lace\.png: interlaced"):
        load_image(path)


def pgm(pixels, maxval=255, binary=True, comment=b"# made in a test\n"):
    height, width = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    magic = {(1, True): b"P5", (3, True): b"P6", (1, False): b"P2", (3, False): b"P3"}
    head = magic[channels, binary] + b"\n" + comment + f"{width} {height}\n{maxval}\n".encode()
    if not binary:
        return head + " ".join(map(str, pixels.ravel().tolist())).encode()
    return head + pixels.astype(">u2" if maxval > 255 else np.uint8).tobytes()


def test_netpbm_binary_ascii_and_16_bit():
    gray, rgb = rng.integers(0, 256, (3, 5)), rng.integers(0, 1000, (4, 2, 3))
    decoded, maxval = decode_netpbm(pgm(gray))
    np.testing.assert_array_equal(decoded[:, :, 0], gray)
    decoded, maxval = decode_netpbm(pgm(rgb, maxval=1000))
    assert maxval == 1000 and decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, rgb)
    np.testing.assert_array_equal(decode_netpbm(pgm(gray, binary=False))[0][:, :, 0], gray)
    with pytest.raises(DataError, match=r"a\.pgm: truncated PGM/PPM \(14 of 15"):
        decode_netpbm(pgm(gray)[:-1], "a.pgm")


def make_folder(root):
    """cats: two gray PNGs; dogs: an RGB PNG, a PGM and an .npy; all 4x6 (H x W)."""
    images = {"cats/a.png": rng.integers(0, 256, (4, 6, 1)),
              "cats/b.png": rng.integers(0, 256, (4, 6, 1)),
              "dogs/c.png": rng.integers(0, 256, (4, 6, 3)),
              "dogs/sub/d.pgm": rng.integers(0, 256, (4, 6, 1)),
              "dogs/e.npy": rng.integers(0, 256, (4, 6, 3)).astype(np.uint8)}
    for name, pixels in images.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".png"):
            path.write_bytes(encode_png(pixels, 0 if pixels.shape[2] == 1 else 2))
        elif name.endswith(".pgm"):
            path.write_bytes(pgm(pixels[:, :, 0]))
        else:
            np.save(path, pixels)
    (root / "dogs" / "notes.txt").write_text("not an image")
    return images


def test_image_folder_classes_samples_and_pixels(tmp_path):
    images = make_folder(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cats", "dogs"] and ds.class_to_idx == {"cats": 0, "dogs": 1}
    assert len(ds) == 5 and ds.targets.tolist() == [0, 0, 1, 1, 1]
    for (path, label), name in zip(ds.samples, ["cats/a.png", "cats/b.png", "dogs/c.png",
                                               "dogs/e.npy", "dogs/sub/d.pgm"]):
        assert path == str(tmp_path / name)
        image, target = ds[ds.samples.index((path, label))]
        assert image.dtype == np.float32 and image.shape == (3, 4, 6) and target == label
        expected = np.broadcast_to(images[name], (4, 6, 3)).transpose(2, 0, 1) / 255
        np.testing.assert_allclose(image, expected, rtol=1e-6)


def test_image_folder_grayscale_resize_transform_and_batches(tmp_path):
    images = make_folder(tmp_path)
    ds = ImageFolder(tmp_path, size=(8, 3), grayscale=True, transform=lambda im: 1 - im)
    image, _ = ds[0]
    assert image.shape == (1, 8, 3)
    nearest = images["cats/a.png"][np.arange(8) // 2][:, [1, 3, 5], 0] / 255
    np.testing.assert_allclose(image[0], 1 - nearest, rtol=1e-6)
    rgb, _ = ds[2]
    luma = images["dogs/c.png"][np.arange(8) // 2][:, [1, 3, 5]] @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(rgb[0], 1 - luma / 255, atol=1e-6)
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 8, 3) and yb.tolist() == [0, 0, 1, 1]


def test_images_of_different_sizes_need_a_size_to_batch(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "small.png").write_bytes(encode_png(np.zeros((2, 2, 1)), 0))
    (tmp_path / "a" / "wide.png").write_bytes(encode_png(np.zeros((2, 5, 1)), 0))
    with pytest.raises(DataError, match=r"small\.png is \(3, 2, 2\).*wide\.png is \(3, 2, 5\)"):
        ImageFolder(tmp_path)[np.arange(2)]
    assert ImageFolder(tmp_path, size=(3, 3))[np.arange(2)][0].shape == (2, 3, 3, 3)


@pytest.mark.skipif(HAS_PILLOW, reason="Pillow is installed, so JPEG is a supported format")
def test_unsupported_format_names_the_file_and_format(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "dogs" / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not decoded")
    with pytest.raises(DataError, match=r"photo\.jpg: JPEG images need Pillow"):
        ImageFolder(tmp_path)


def test_bad_roots_and_files(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        ImageFolder(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no class subfolders"):
        ImageFolder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="with no images .*: empty"):
        ImageFolder(tmp_path)
    (tmp_path / "empty" / "x.pgm").write_bytes(b"P7\n1 1\n\0")
    with pytest.raises(DataError, match=r"x\.pgm: Netpbm type 'P7' is not supported"):
        ImageFolder(tmp_path)[0]
    (tmp_path / "empty" / "x.pgm").write_bytes(b"")
    with pytest.raises(DataError, match=r"image file is empty: .*x\.pgm"):
        ImageFolder(tmp_path)[0]
