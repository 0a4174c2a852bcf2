"""Layer-level behaviour the parity fixtures do not cover: training passes, masking, flow inversion,
the real-time infer path, discriminators."""

import math

import pytest
import torch

from webui_lora.rvc.models import build_discriminator, build_synthesizer
from webui_lora.rvc.models.attention import MultiHeadAttention
from webui_lora.rvc.models.flow import ResidualCouplingBlock

CONFIG_40K = [1025, 8, 8, 16, 32, 2, 2, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 32, [16, 16, 4, 4]]
CONFIG_40K += [3, 16, 40000]  # tiny widths, the real 40k layout; segment_size 8 frames
HOP = 400
pytestmark = pytest.mark.usefixtures("one_thread")


def naive_relative_attention(attn, x, mask):
    """Attention with relative positions written pair by pair, to check the banded implementation."""
    q, k, v = attn.conv_q(x), attn.conv_k(x), attn.conv_v(x)
    heads, d, w = attn.n_heads, attn.k_channels, attn.window_size
    length = x.shape[2]
    split = lambda t: t.view(1, heads, d, length)[0]  # [H, D, T]
    q, k, v = split(q) / math.sqrt(d), split(k), split(v)
    out = torch.zeros(heads, d, length)
    for h in range(heads):
        scores = torch.empty(length, length)
        for i in range(length):
            for j in range(length):
                scores[i, j] = q[h, :, i] @ k[h, :, j]
                if abs(j - i) <= w:
                    scores[i, j] += q[h, :, i] @ attn.emb_rel_k[0, j - i + w]
        scores = scores.masked_fill(mask[0, 0] == 0, -1e4)
        p = scores.softmax(-1)
        for i in range(length):
            for j in range(length):
                value = v[h, :, j] + (attn.emb_rel_v[0, j - i + w] if abs(j - i) <= w else 0)
                out[h, :, i] += p[i, j] * value
    return attn.conv_o(out.reshape(1, heads * d, length))


@pytest.mark.parametrize("length", [4, 25])
@pytest.mark.parametrize("training, query_block", [(True, None), (False, 4), (False, 64)])
def test_relative_attention_matches_pairwise_definition(length, training, query_block):
    """In training one block of all rows; in eval blocks of ``query_block`` rows (the last one short)."""
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 8, 2, window_size=10).train(training)
    if query_block:
        attn.query_block = query_block
    x = torch.randn(1, 8, length)
    valid = torch.ones(1, 1, length)
    valid[..., -2:] = 0
    mask = valid.unsqueeze(2) * valid.unsqueeze(-1)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, x, mask), naive_relative_attention(attn, x, mask), atol=1e-5, rtol=1e-5)


def test_flow_reverse_inverts_forward():
    torch.manual_seed(0)
    flow = ResidualCouplingBlock(8, 16, 5, 1, 3, gin_channels=4)
    with torch.no_grad():
        for layer in flow.flows[::2]:
            layer.post.weight.normal_()
    z, mask, g = torch.randn(2, 8, 10), torch.ones(2, 1, 10), torch.randn(2, 4, 1)
    with torch.no_grad():
        z_p = flow(z, mask, g=g)
        assert not torch.allclose(z_p, z)
        torch.testing.assert_close(flow(z_p, mask, g=g, reverse=True), z, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("f0", [True, False])
def test_training_forward_shapes_and_gradients(f0):
    torch.manual_seed(0)
    model = build_synthesizer(CONFIG_40K, "v2", f0).train()
    batch, frames = 2, 20
    phone = torch.randn(batch, frames, 768)
    lengths = torch.tensor([20, 15])
    spec = torch.randn(batch, 1025, frames)
    sid = torch.tensor([0, 2])
    if f0:
        pitch = torch.randint(1, 255, (batch, frames))
        pitchf = torch.rand(batch, frames) * 200 + 100
        out = model(phone, lengths, pitch, pitchf, spec, lengths, sid)
    else:
        out = model(phone, lengths, spec, lengths, sid)
    audio, ids, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q) = out
    assert audio.shape == (batch, 1, 8 * HOP)  # segment_size (config[1]) frames
    assert ids.shape == (batch,) and bool((ids <= lengths - 8).all())
    assert z.shape == z_p.shape == m_q.shape == (batch, 8, frames)
    assert float(x_mask[1, 0, 15:].abs().sum()) == 0
    (audio.square().mean() + (z_p - m_p).square().mean()).backward()
    assert model.enc_q.pre.weight.grad is not None and model.emb_g.weight.grad is not None


def test_realtime_infer_path():
    """skip_head/return_length crop the output; with no crop it is the plain infer."""
    torch.manual_seed(0)
    model = build_synthesizer(CONFIG_40K, "v2", True, inference=True).eval()
    frames = 40
    phone, lengths, sid = torch.randn(1, frames, 768), torch.tensor([frames]), torch.tensor([0])
    pitch, nsff0 = torch.randint(1, 255, (1, frames)), torch.rand(1, frames) * 200 + 100
    args = (phone, lengths, pitch, nsff0, sid)
    with torch.no_grad():
        torch.manual_seed(1)
        plain = model.infer(*args)[0]
        torch.manual_seed(1)
        uncropped = model.infer(*args, skip_head=0, return_length=frames)[0]
        cropped = model.infer(*args, skip_head=30, return_length=6)[0]
        stretched = model.infer(*args, skip_head=30, return_length=6, return_length2=9)[0]
    torch.testing.assert_close(uncropped, plain)
    assert cropped.shape == (1, 1, 6 * HOP)
    assert stretched.shape == (1, 1, 9 * HOP)


def test_resblock2_generator_runs():
    config = list(CONFIG_40K)
    config[9], config[11] = "2", [[1, 3]] * 3
    model = build_synthesizer(config, "v1", False, inference=True).eval()
    assert "dec.resblocks.0.convs.1.weight_v" in model.state_dict()
    with torch.no_grad():
        audio = model.infer(torch.randn(1, 5, 256), torch.tensor([5]), torch.tensor([0]))[0]
    assert audio.shape == (1, 1, 5 * HOP)


def test_discriminator_forward():
    torch.manual_seed(0)
    mpd = build_discriminator("v2")
    real, fake = torch.randn(1, 1, 1001), torch.randn(1, 1, 1001)  # not a multiple of any period: reflect-padded
    with torch.no_grad():
        real_scores, fake_scores, real_maps, fake_maps = mpd(real, fake)
    assert len(real_scores) == len(fake_scores) == 9
    assert [len(maps) for maps in real_maps] == [7] + [6] * 8
    assert real_maps[8][0].shape[-1] == 37
