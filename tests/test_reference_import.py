"""Import of the reference FaceFormer checkpoints: equivalence with a replica of the reference algorithm, the real
VOCASET shapes with wav2vec2-base, and the failure cases (wrong dataset, wrong sizes, stray keys, unsafe files)."""
import pytest
import torch

from reference_replica import ReferenceReplica, legacy_weight_norm_keys
from speechface.core import CheckpointError
from speechface.models.audio_encoder import AudioEncoderConfig, tiny_wav2vec2_config
from speechface.models.faceformer import FaceFormer, FaceFormerConfig
from speechface.models.reference_import import (ReferenceImportError, build_reference_model, from_reference_checkpoint,
                                                load_reference_state_dict, reference_config, reference_frame_count)

TOL = 1e-5


def _pair(dataset, motion_dim=150, d=32, n_subjects=4, seed=0):
    torch.manual_seed(seed)
    ref = ReferenceReplica("BIWI" if dataset == "biwi" else "vocaset", motion_dim, d, n_subjects,
                           tiny_wav2vec2_config()).eval()
    sd = legacy_weight_norm_keys(ref.state_dict())
    ours = build_reference_model(reference_config(sd, dataset), tiny_audio=True).eval()
    report = load_reference_state_dict(ours, sd)
    return ref, ours, report


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
def test_outputs_match_reference_algorithm(dataset):
    ref, ours, report = _pair(dataset)
    assert report.ok and set(report.kept_at_init) == {"log_sigma"} and "PPE.pe" in report.dropped
    torch.manual_seed(1)
    audio = torch.randn(1, 16000 * 3)                                    # 3 s: T > period, the bias steps matter
    tpl, oh = 0.1 * torch.randn(1, 150), torch.eye(4)[2:3]
    T = reference_frame_count(ours, audio.shape[1])
    assert T == (89 if dataset == "vocaset" else 74)
    gt = tpl[:, None] + 0.05 * torch.randn(1, T, 150)
    with torch.no_grad():
        want_tf = ref(audio, tpl, gt, oh)
        want_ar = ref.predict(audio, tpl, oh)
        got_tf = ours(audio, tpl, oh, motion=gt, mode="teacher")["mu"]
        got_ar = ours.predict(audio, tpl, oh, n_frames=T)
        got_rc = ours(audio, tpl, oh, n_frames=T, mode="recompute")["mu"]
    assert want_ar.shape == got_ar.shape == (1, T, 150)
    assert want_ar.abs().max() > 0.5                                     # outputs are not just the template
    for name, got, want in (("teacher", got_tf, want_tf), ("cached AR", got_ar, want_ar), ("recompute", got_rc, want_ar)):
        err = (got - want).abs().max().item()
        assert err <= TOL, f"{dataset} {name}: max abs diff {err:.2e}"


def test_current_weight_norm_spelling_loads_too():
    torch.manual_seed(0)
    ref = ReferenceReplica("vocaset", 30, 16, 2, tiny_wav2vec2_config())
    ours = build_reference_model(reference_config(ref.state_dict()), tiny_audio=True)
    rep = load_reference_state_dict(ours, ref.state_dict())              # parametrizations.* names, no rename needed
    assert rep.ok and not any(k.endswith(("weight_g", "weight_v")) for k in rep.renamed)
    w = ours.audio_encoder.model.encoder.pos_conv_embed.conv
    assert torch.equal(w.parametrizations.weight.original1, ref.audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original1)


def test_file_round_trip(tmp_path):
    torch.manual_seed(0)
    ref = ReferenceReplica("BIWI", 60, 16, 3, tiny_wav2vec2_config()).eval()
    path = tmp_path / "biwi.pth"
    torch.save(legacy_weight_norm_keys(ref.state_dict()), path)
    m = from_reference_checkpoint(path, "biwi", tiny_audio=True)
    assert (m.cfg.motion_dim, m.cfg.feature_dim, m.cfg.n_subjects, m.cfg.fps, m.cfg.period) == (60, 16, 3, 25, 25)
    assert not m.training and m.start_token == "reference" and m.reference_import_report.ok
    audio, tpl, oh = torch.randn(1, 16000), torch.zeros(1, 60), torch.eye(3)[:1]
    T = reference_frame_count(m, 16000)
    assert (m.predict(audio, tpl, oh, n_frames=T) - ref.predict(audio, tpl, oh)).abs().max() <= TOL
    with pytest.raises(ReferenceImportError, match="dataset='biwi'"):
        from_reference_checkpoint(path, "vocaset", tiny_audio=True)      # the PPE period gives the dataset away


def test_real_vocaset_shapes_with_wav2vec2_base(tmp_path):
    "The released vocaset.pth's shapes: d 64, 3V 15069, 8 subjects, 768-d wav2vec2-base (random weights, no download)."
    from transformers import Wav2Vec2Config
    torch.manual_seed(0)
    ref = ReferenceReplica("vocaset", 15069, 64, 8, Wav2Vec2Config())
    sd = legacy_weight_norm_keys(ref.state_dict())
    assert sd["PPE.pe"].shape == (1, 630, 64) and "audio_encoder.encoder.pos_conv_embed.conv.weight_g" in sd
    path = tmp_path / "vocaset.pth"
    torch.save(sd, path)
    del ref
    m = from_reference_checkpoint(path, "vocaset")
    assert m.audio_encoder.out_dim == 768 and m.cfg.audio.model_name == "facebook/wav2vec2-base-960h"
    assert (m.cfg.motion_dim, m.cfg.feature_dim, m.cfg.n_subjects) == (15069, 64, 8)
    assert torch.equal(m.vertice_map_r.weight, sd["vertice_map_r.weight"])
    assert torch.equal(m.audio_encoder.model.encoder.layers[11].attention.q_proj.weight,
                       sd["audio_encoder.encoder.layers.11.attention.q_proj.weight"])
    assert m.predict(torch.randn(1, 8000), torch.zeros(1, 15069), torch.eye(8)[:1], n_frames=4).shape == (1, 4, 15069)


def test_biwi_checkpoint_into_vocaset_config_names_the_cause():
    torch.manual_seed(0)
    biwi = ReferenceReplica("BIWI", 70110, 128, 6, tiny_wav2vec2_config()).state_dict()
    voca = FaceFormer(FaceFormerConfig.vocaset(audio=AudioEncoderConfig(backend="wav2vec2", tiny=True)), "reference")
    before = voca.vertice_map.weight.clone()
    with pytest.raises(ReferenceImportError) as e:
        load_reference_state_dict(voca, biwi)
    msg = str(e.value)
    for s in ("vertice_map.weight: checkpoint (128, 70110) vs model (64, 15069)", "motion_dim 70110 vs 15069",
              "feature_dim 128 vs 64", "BIWI checkpoint loaded into a VOCASET config", "dataset='biwi'", "n_subjects=6"):
        assert s in msg, s
    assert torch.equal(voca.vertice_map.weight, before)                  # all or nothing: nothing was loaded


def test_audio_encoder_size_mismatch_explained():
    torch.manual_seed(0)
    sd = ReferenceReplica("vocaset", 30, 16, 2, tiny_wav2vec2_config()).state_dict()
    from transformers import Wav2Vec2Config
    cfg = Wav2Vec2Config(hidden_size=96, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                         conv_dim=(32, 32, 32), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    wide = ReferenceReplica("vocaset", 30, 16, 2, cfg).state_dict()      # a 96-d audio encoder
    model = build_reference_model(reference_config(sd), tiny_audio=True)
    with pytest.raises(ReferenceImportError, match="audio_dim 96 vs 64.*wav2vec2"):
        load_reference_state_dict(model, wide)


def test_unexpected_and_missing_keys():
    torch.manual_seed(0)
    sd = ReferenceReplica("vocaset", 30, 16, 2, tiny_wav2vec2_config()).state_dict()
    model = build_reference_model(reference_config(sd), tiny_audio=True)
    extra = {**sd, "biased_mask_copy": torch.zeros(3)}
    with pytest.raises(ReferenceImportError, match="1 unexpected key"):
        load_reference_state_dict(model, extra)
    rep = load_reference_state_dict(model, extra, strict=False)
    assert rep.unexpected == ["biased_mask_copy"] and "unexpected" in repr(rep)
    short = {k: v for k, v in sd.items() if k != "vertice_map_r.bias"}
    with pytest.raises(ReferenceImportError, match="1 missing key"):
        load_reference_state_dict(model, short)
    rep = load_reference_state_dict(model, short, strict=False)
    assert rep.missing == ["vertice_map_r.bias"] and not rep.ok


def test_masked_spec_embed_dropped_when_model_has_none():
    torch.manual_seed(0)
    sd = ReferenceReplica("vocaset", 30, 16, 2, tiny_wav2vec2_config()).state_dict()
    sd["audio_encoder.masked_spec_embed"] = torch.rand(64)               # the base config has one; the tiny has not
    rep = load_reference_state_dict(build_reference_model(reference_config(sd), tiny_audio=True), sd)
    assert "audio_encoder.masked_spec_embed" in rep.dropped and rep.ok


def test_wrong_ppe_content_and_wrong_backend_refused():
    torch.manual_seed(0)
    sd = ReferenceReplica("vocaset", 30, 16, 2, tiny_wav2vec2_config()).state_dict()
    model = build_reference_model(reference_config(sd), tiny_audio=True)
    bad = {**sd, "PPE.pe": sd["PPE.pe"] * 1.01}
    with pytest.raises(ReferenceImportError, match="PPE"):
        load_reference_state_dict(model, bad)
    mel = FaceFormer(FaceFormerConfig(motion_dim=30, feature_dim=16, n_subjects=2))
    with pytest.raises(ReferenceImportError, match="backend='wav2vec2'"):
        load_reference_state_dict(mel, sd)
    with pytest.raises(ReferenceImportError, match="unwrap"):
        load_reference_state_dict(model, {"model": sd})
    with pytest.raises(ValueError, match="'vocaset' or 'biwi'"):
        reference_config(sd, "beat2")


class _Payload:
    def __reduce__(self): return (print, ("this must not run",))


def test_checkpoint_read_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"vertice_map.weight": _Payload()}, path)                 # a pickle that would call print on load
    with pytest.raises(CheckpointError, match="weights-only"):
        from_reference_checkpoint(path, tiny_audio=True)
