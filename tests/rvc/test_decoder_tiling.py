"""Decoding long inputs in tiles with context is the same function as decoding them whole."""

import pytest
import torch

from lora_core import LoRAConfig, inject_lora
from webui_lora.rvc.models.generator import Generator, GeneratorNSF, PackedConvs, _tiles

LAYOUTS = [([10, 10, 2, 2], [16, 16, 4, 4]), ([12, 10, 2, 2], [24, 20, 4, 4]), ([10, 6, 2, 2, 2], [16, 16, 4, 4, 4])]


def decode(decoder, frames, tile_elements, seed=3, span=None):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 8, frames, generator=generator)
    g = torch.randn(1, 4, 1, generator=generator)
    decoder.tile_elements = tile_elements
    torch.manual_seed(seed)
    with torch.no_grad():
        if isinstance(decoder, GeneratorNSF):
            f0 = torch.rand(1, frames, generator=generator) * 300 + 80
            f0[:, 20:30] = 0
            return decoder(x, f0, g, frames=span)
        return decoder(x, g, frames=span)


@pytest.mark.parametrize("rates, kernels", LAYOUTS)
@pytest.mark.parametrize("nsf", [True, False])
@pytest.mark.parametrize("with_lora", [False, True])
def test_tiled_equals_whole(rates, kernels, nsf, with_lora):
    torch.manual_seed(0)
    args = (8, "1", [3, 7, 11], [[1, 3, 5]] * 3, rates, 32, kernels, 4)
    decoder = (GeneratorNSF(*args, sr=40000) if nsf else Generator(*args)).eval()
    if with_lora:
        inject_lora(decoder, LoRAConfig(r=2, target_modules="all", init_lora_weights=False))
    whole = decode(decoder, 130, None)
    tiled = decode(decoder, 130, 300)  # several tiles at every stage
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() <= 1e-5 * whole.abs().max()


@pytest.mark.parametrize("nsf", [True, False])
@pytest.mark.parametrize("tile_elements", [None, 300])
def test_a_span_of_frames_is_those_samples_of_a_whole_decode(nsf, tile_elements):
    """What conversion asks for: the frames between the chunk's paddings, with the same NSF draws."""
    torch.manual_seed(0)
    args = (8, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 32, [16, 16, 4, 4], 4)
    decoder = (GeneratorNSF(*args, sr=40000) if nsf else Generator(*args)).eval()
    whole = decode(decoder, 130, None)
    span = decode(decoder, 130, tile_elements, span=(21, 109))
    expected = whole[..., 21 * decoder.upp:109 * decoder.upp]
    assert span.shape == expected.shape
    assert (span - expected).abs().max() <= 1e-5 * whole.abs().max()


def test_training_mode_never_tiles():
    torch.manual_seed(0)
    decoder = Generator(8, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 32, [16, 16, 4, 4], 4).train()
    calls = []
    original = decoder._stages
    decoder._stages = lambda *a: calls.append(1) or original(*a)
    decode(decoder, 100, 5)
    assert len(calls) == len(decoder.ups) + 1


def test_tiles_cover_the_span_once_with_widths_from_a_fixed_set():
    step = 40
    for begin, end in [(0, 40), (5, 6), (3, 200), (100, 219), (0, 1000)]:
        for outermost in (True, False):
            tiles = _tiles(begin, end, step, outermost)
            assert [t[0] for t in tiles] == [begin] + [t[1] for t in tiles[:-1]] and tiles[-1][1] == end
            assert all(computed_from <= start for start, _, computed_from in tiles)
        widths = {stop - computed_from for _, stop, computed_from in _tiles(begin, end, step, True)}
        assert widths <= {5, 10, 15, 20, 25, 30, 35, 40}


def test_chunks_of_nearby_lengths_run_convolutions_of_the_same_shapes(monkeypatch):
    """oneDNN builds and keeps kernels per shape: a long input's chunks, each of its own length, must not
    each bring new shapes (that grew the resident size by about 12 MB per chunk)."""
    torch.manual_seed(0)
    decoder = GeneratorNSF(8, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 32, [16, 16, 4, 4], 4, sr=40000).eval()
    shapes = set()
    original = PackedConvs.__call__
    monkeypatch.setattr(PackedConvs, "__call__", lambda self, module, x: shapes.add((id(module), x.shape)) or
                        original(self, module, x))
    decoder.tile_elements = 300
    step, _ = decoder._tile_plan(0)
    granule = step // 8
    seen = set()
    for last in range(1, granule + 1):  # two full tiles, then a last tile of 1..granule frames
        shapes.clear()
        decode(decoder, 230, 300, span=(10, 10 + 2 * step + last))
        seen.add(frozenset(shapes))
    assert len(seen) == 1
