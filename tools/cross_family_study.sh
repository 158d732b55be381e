#!/usr/bin/env bash
# Issue 27's held-out voice-family study, every command in order (docs/results/cross_family.md has the results).
# Trained on eSpeak NG + Festival's two diphone voices; Festival's HTS voice (cmu_us_slt_arctic_hts) is heard by no
# model: not the SFT actor, not the reward's sync expert or score head, not RL, not the evaluation lip-reader.
#
#   bash tools/cross_family_study.sh corpus                 # small corpus, eSpeak + Festival; val/test sentences 21-50
#   bash tools/cross_family_study.sh sft  RECIPE SEED       # RECIPE: none (trainer=cpu) | aug (+ every augmentation at p=0.5)
#                                                           # | aug_voice (stretch, pitch, formant) | aug_channel (the other five)
#   bash tools/cross_family_study.sh reward RECIPE          # closure-aware sync expert + score head (seed 0's SFT as negatives)
#   bash tools/cross_family_study.sh rl   RECIPE SEED       # the RL recipe of perceptual_rl_prereg3.yaml (N), on that SFT actor
#   bash tools/cross_family_study.sh val  RECIPE SEED       # the validation table (the held-out voice is never scored here)
#   bash tools/cross_family_study.sh test RECIPE SEED [OTHER ...]   # the test table: needs the final pre-registration;
#                                                           # OTHER SFT recipes of the same seed are scored beside it
#
# OUT (default runs/xfam) holds everything; runs/ is not committed. Each training step runs on one CPU thread, so two
# steps can share a 2-core machine.
set -euo pipefail
OUT=${OUT:-runs/xfam}
D=$OUT/data CK=$OUT/ck HTS=cmu_us_slt_arctic_hts
PREREG=docs/results/cross_family_prereg.yaml
BASE=("dataset.root=$D" "out_dir=$CK" "threads=1" "dataset.holdout=[$HTS]")
AUG=(trainer.augment.{stretch,pitch,formant,reverb,noise,eq,band,codec}_p=0.5)
RL=(trainer=rl trainer.variant=backprop trainer.rollout=free trainer.kl_weight=300 trainer.lr=2e-5 trainer.epochs=20
    trainer.select=reward trainer.sup_weight=1e7)
stage=${1:?stage: corpus, sft, reward, rl, val or test}
recipe=${2:-none} seed=${3:-0}
sft_args() {                # the SFT recipes: none (trainer=cpu) and three audio domain randomisations
  case $1 in
    none) ;;
    aug) echo "${AUG[@]}" ;;                                                   # all eight transforms
    aug_voice) echo trainer.augment.{stretch,pitch,formant}_p=0.5 ;;          # the speaker: rate, pitch, vocal tract
    aug_channel) echo trainer.augment.{reverb,noise,eq,band,codec}_p=0.5 ;;   # the room, the microphone, the line
    *) echo "unknown SFT recipe $1 (none, aug, aug_voice, aug_channel)" >&2; exit 2 ;;
  esac
}
case $stage in
  corpus)
    speechface synth --preset small --voices espeak,festival --seed 0 --out "$D" --quiet
    python tools/cross_family.py extend --data "$D" --split val --last-sentence 50
    python tools/cross_family.py extend --data "$D" --split test --last-sentence 50
    python tools/cross_family.py lipreader --data "$D" --holdout $HTS --out "$OUT/lipreader.pt" ;;
  sft)
    # shellcheck disable=SC2046
    speechface train "${BASE[@]}" "run=sft_${recipe}_s$seed" "seed=$seed" trainer=cpu trainer.max_minutes=null \
        $(sft_args "$recipe") --quiet ;;
  reward)
    [ -f "$CK/reward/sync_expert.pt" ] ||
        speechface train "${BASE[@]}" seed=0 trainer=sync_expert trainer.max_minutes=5 trainer.closure_negatives=1 --quiet
    speechface train "${BASE[@]}" seed=0 trainer=reward_head trainer.max_minutes=2 \
        "trainer.perturbations=[oversmooth,jitter,time_warp,open_closures,shut_openings]" \
        "trainer.actor=$CK/sft_${recipe}_s0/best.pt" "trainer.out=$CK/reward/reward_head_$recipe.pt" --quiet ;;
  rl)
    speechface train "${BASE[@]}" "run=rl_${recipe}_s$seed" "seed=$seed" "${RL[@]}" "trainer.init_actor=$CK/sft_${recipe}_s$seed/best.pt" \
        "trainer.sync_expert=$CK/reward/sync_expert.pt" "trainer.head=$CK/reward/reward_head_$recipe.pt" --quiet ;;
  val|test)
    ck=("sft=$CK/sft_${recipe}_s$seed/best.pt")
    for a in "${@:4}"; do ck+=("sft_$a=$CK/sft_${a}_s$seed/best.pt"); done   # secondary SFT recipes scored beside it
    [ -f "$CK/rl_${recipe}_s$seed/best.pt" ] && ck+=("rl=$CK/rl_${recipe}_s$seed/best.pt")
    extra=()
    [ "$stage" = test ] && extra=(--config $PREREG)
    python tools/cross_family.py table --data "$D" --split "$stage" --ckpt "${ck[@]}" --lip-reader "$OUT/lipreader.pt" \
        --baseline sft --out "$OUT/${stage}_${recipe}_s$seed" "${extra[@]}" ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
