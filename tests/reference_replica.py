"""An independent re-statement of the reference FaceFormer (EvelynFan/FaceFormer, Fan et al. CVPR 2022) for tests.

Written from the facts of EvelynFan/FaceFormer's faceformer.py (module names, shapes, masks, the audio path and how
`predict` counts frames), not from the reference's code. Its `state_dict()` has the reference's key names and shapes, so it stands in for
the released `vocaset.pth` / `biwi.pth`; its forward and predict implement the reference algorithm the plain,
slow way (full attention with explicit masks, the whole prefix re-run every frame), so our cached decoder can be
checked against it. Batch size 1 only, as the reference's (H, T, T) float mask implies.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import Wav2Vec2Model


class ReplicaPPE(nn.Module):
    "Periodic positional encoding stored as the reference stores it: (1, period·(max_len//period + 1), d)."
    def __init__(self, d: int, period: int, max_seq_len: int = 600, dropout: float = 0.1):
        super().__init__()
        pos = torch.arange(period, dtype=torch.float32)[:, None]                     # (p, 1)
        freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2).float() / d)     # (d/2,)
        one = torch.zeros(period, d)
        one[:, 0::2], one[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)    # (p, d)
        self.register_buffer("pe", one.repeat(max_seq_len // period + 1, 1)[None])   # (1, L, d), persistent
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):                                                            # (1, T, d)
        return self.dropout(x + self.pe[:, : x.shape[1]])


class ReferenceReplica(nn.Module):
    "The reference model's modules under the reference's names, with its training forward and predict."
    def __init__(self, dataset: str,              # 'vocaset' (30 fps, 1 audio token/frame) or 'BIWI' (25 fps, 2)
                 motion_dim: int, feature_dim: int, n_subjects: int,
                 wav2vec2_config,                 # a transformers Wav2Vec2Config (tiny for speed, default for base)
                 period: int | None = None,       # PPE period: 30 vocaset, 25 BIWI
                 n_heads: int = 4):
        super().__init__()
        assert dataset in ("vocaset", "BIWI"), dataset
        self.dataset, self.n_heads = dataset, n_heads
        self.period = period or (30 if dataset == "vocaset" else 25)
        d = feature_dim
        self.audio_encoder = Wav2Vec2Model(wav2vec2_config)
        self.audio_feature_map = nn.Linear(wav2vec2_config.hidden_size, d)
        self.vertice_map = nn.Linear(motion_dim, d)
        self.PPE = ReplicaPPE(d, self.period)
        self.transformer_decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, n_heads, 2 * d, batch_first=True), num_layers=1)
        self.vertice_map_r = nn.Linear(d, motion_dim)  # the reference zero-initialises it; random here so tests bite
        self.obj_vector = nn.Linear(n_subjects, d, bias=False)

    # -- masks, built per length as the reference's precomputed 600×600 tables would read ---------------------
    def temporal_bias(self, T: int) -> torch.Tensor:
        "(H, T, T): row i holds -m_h·floor((i-j)/p) for j ≤ i and -inf after; m_h = 2^(-8(h+1)/H)."
        slopes = [2.0 ** (-8.0 * (h + 1) / self.n_heads) for h in range(self.n_heads)]
        out = torch.full((self.n_heads, T, T), float("-inf"))
        for i in range(T):
            steps = torch.tensor([(i - j) // self.period for j in range(i + 1)], dtype=torch.float32)
            for h, m in enumerate(slopes): out[h, i, : i + 1] = -m * steps
        return out

    def alignment_mask(self, T: int, S: int) -> torch.Tensor:
        "(T, S) boolean, True = blocked: frame i sees audio token i (vocaset) or tokens 2i, 2i+1 (BIWI)."
        blocked = torch.ones(T, S, dtype=torch.bool)
        for i in range(T):
            if self.dataset == "BIWI": blocked[i, 2 * i: 2 * i + 2] = False
            else: blocked[i, i] = False
        return blocked

    # -- audio: the reference's wav2vec2 forward ------------------------------------------------------------
    def encode_audio(self, audio: torch.Tensor, frame_num: int | None = None) -> torch.Tensor:
        "CNN features → (vocaset) linear interpolation to the frame count / (BIWI) even-length cut to 2T → projection → encoder."
        w = self.audio_encoder
        h = w.feature_extractor(audio).transpose(1, 2)                                 # (1, N50, C)
        if self.dataset == "BIWI":
            if h.shape[1] % 2: h = h[:, :-1]
            if frame_num and h.shape[1] > 2 * frame_num: h = h[:, : 2 * frame_num]
        else:
            n = frame_num if frame_num else int(h.shape[1] / 50.0 * 30)
            h = F.interpolate(h.transpose(1, 2), size=n, mode="linear", align_corners=True).transpose(1, 2)
        h = w.feature_projection(h)
        h = h[0] if isinstance(h, tuple) else h                                        # (1, S, hidden)
        return w.encoder(h).last_hidden_state                                          # (1, S, hidden)

    def _decode(self, x, memory):
        T, S = x.shape[1], memory.shape[1]
        out = self.transformer_decoder(self.PPE(x), memory, tgt_mask=self.temporal_bias(T),
                                       memory_mask=self.alignment_mask(T, S))
        return self.vertice_map_r(out)                                                 # (1, T, 3V)

    def forward(self, audio, template, vertice, one_hot):
        "Teacher forcing: inputs are the template then the ground truth shifted by one, relative to the template."
        tpl, style = template[:, None], self.obj_vector(one_hot)[:, None]              # (1, 1, 3V), (1, 1, d)
        T = vertice.shape[1]
        memory = self.encode_audio(audio, T)
        if self.dataset == "BIWI" and memory.shape[1] < 2 * T:
            T = memory.shape[1] // 2
            vertice = vertice[:, :T]
        memory = self.audio_feature_map(memory)
        x = self.vertice_map(torch.cat([tpl, vertice[:, :-1]], 1) - tpl) + style       # (1, T, d)
        return self._decode(x, memory) + tpl                                           # (1, T, 3V)

    @torch.no_grad()
    def predict(self, audio, template, one_hot):
        "Autoregressive: start from the bare style embedding, re-run the whole prefix every frame."
        tpl, style = template[:, None], self.obj_vector(one_hot)[:, None]
        memory = self.encode_audio(audio)
        T = memory.shape[1] // 2 if self.dataset == "BIWI" else memory.shape[1]
        memory = self.audio_feature_map(memory)
        tokens = style                                                                 # (1, 1, d)
        for _ in range(T):
            out = self._decode(tokens, memory)                                         # (1, t, 3V)
            tokens = torch.cat([tokens, self.vertice_map(out[:, -1])[:, None] + style], 1)
        return out + tpl                                                               # (1, T, 3V)


def legacy_weight_norm_keys(state_dict: dict) -> dict:
    "Rename wav2vec2's positional-conv weight norm to the pre-parametrization names (`weight_g`, `weight_v`) of the released files."
    out = {}
    for k, v in state_dict.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
        out[k] = v
    return out
