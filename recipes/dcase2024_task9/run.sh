#!/usr/bin/env bash
# DCASE 2024 Task 9 (language-queried audio source separation) with lasskit, stage by stage.
#
#   ./run.sh --dcase2024 /data/dcase2024_task9 --clotho /data/clotho_v2 --fsd50k /data/FSD50K \
#            --fsd50k-captions /data/fsd50k_captions.json --stage 0 --stop-stage 8
#
# Stages (see README.md here for downloads, disk space and time):
#   0  prepare the official validation/evaluation sets (dcase2024_val, val_synth, eval_synth, eval_real)
#   1  prepare Clotho v2 (labels derived from its keywords and captions, see lasskit label)
#   2  prepare FSD50K (with the organizers' generated captions when given)
#   3  mix a class-disjoint training split from FSD50K and Clotho (given and derived labels)
#   4  mix a validation-style split from the validation clips (integer SNRs, one mixture per caption)
#   5  separate val_synth, eval_synth and eval_real with --model (default dcase2024-baseline)
#   6  score val_synth (breakdown by input SNR)
#   7  package the submission (team details from lasskit.yaml in the workspace)
#   8  check the submission
# Every option below can be given as --name value (dashes for underscores).
set -euo pipefail

stage=0
stop_stage=8
workspace=${LASSKIT_WORKSPACE:-dcase2024_workspace}
dcase2024=""            # folder with lass_validation/, lass_validation.json, lass_*evaluation*
clotho=""               # folder with development/, validation/, evaluation/, clotho_captions_*.csv
fsd50k=""               # folder with FSD50K.dev_audio/, FSD50K.eval_audio/, FSD50K.ground_truth/
fsd50k_captions=""      # the organizers' generated captions for FSD50K (JSON), optional
ontology=""             # AudioSet ontology.json, optional: labels with AudioSet's names and hierarchy
model=dcase2024-baseline
checkpoint=""           # local baseline checkpoint; empty: downloaded into the cache on first use
tokenizer=""            # roberta-base tokenizer folder for offline machines; empty: Hugging Face cache
device=auto
batch_size=4
jobs=0                  # 0: all cores
num_train=20000         # training mixtures (stage 3)
mix_duration=10         # seconds per mixture (stages 3 and 4)
seed=0
index=1                 # system index in the submission, 1 to 4
audio_url=""            # public link to the uploaded audio zips (stage 7)
lasskit=${LASSKIT:-lasskit}

while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
    --*) [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; name=$1; value=$2; shift 2 ;;
    *) echo "run.sh: unexpected argument $1 (options are --name value)" >&2; exit 2 ;;
  esac
  var=${name#--}; var=${var//-/_}
  case "$var" in
    stage|stop_stage|workspace|dcase2024|clotho|fsd50k|fsd50k_captions|ontology|model|checkpoint|tokenizer|device|\
    batch_size|jobs|num_train|mix_duration|seed|index|audio_url|lasskit) printf -v "$var" '%s' "$value" ;;
    *) echo "run.sh: unknown option $name" >&2; exit 2 ;;
  esac
done

mkdir -p "$workspace"
ws() { "$lasskit" --workspace "$workspace" "$@"; }
log() { echo "== stage $1: $2 ($(date +%H:%M:%S))"; }
need() { [ -n "$2" ] || { echo "run.sh: stage $3 needs --$1 DIR" >&2; exit 2; }; }

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log 0 "prepare the DCASE 2024 validation and evaluation sets"
  need dcase2024 "$dcase2024" 0
  ws prepare dcase2024 "$dcase2024" --jobs "$jobs"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if [ -n "$clotho" ]; then
    log 1 "prepare Clotho v2"
    labels=()  # class labels for Clotho's caption-only clips: FSD50K's vocabulary and/or the ontology
    [ -n "$fsd50k" ] && [ -f "$fsd50k/FSD50K.ground_truth/vocabulary.csv" ] && \
      labels+=(--vocabulary "$fsd50k/FSD50K.ground_truth/vocabulary.csv")
    [ -n "$ontology" ] && labels+=(--ontology "$ontology")
    ws prepare clotho "$clotho" "${labels[@]}" --jobs "$jobs"
  else
    log 1 "no --clotho given: skipped"
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log 2 "prepare FSD50K"
  need fsd50k "$fsd50k" 2
  captions=()
  [ -n "$fsd50k_captions" ] && captions=(--captions "$fsd50k_captions")
  ws prepare fsd50k "$fsd50k" "${captions[@]}" --jobs "$jobs"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log 3 "mix a class-disjoint training split (train)"
  corpora=(fsd50k)
  [ -f "$workspace/data/clotho/manifest.csv" ] && corpora+=(clotho)
  onto=()
  [ -n "$ontology" ] && onto=(--ontology "$ontology")
  ws mix "${corpora[@]}" "${onto[@]}" --split train --snr -15 15 --num "$num_train" --duration "$mix_duration" \
    --seed "$seed" --name train --jobs "$jobs"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log 4 "mix a validation-style split (val_style): integer SNRs, one mixture per caption"
  ws mix dcase2024_val --snr -15 15 --integer-snr --per-caption --duration "$mix_duration" \
    --seed "$seed" --name val_style --jobs "$jobs"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log 5 "separate val_synth, eval_synth and eval_real with $model"
  extra=()
  [ -n "$checkpoint" ] && extra+=(--checkpoint "$checkpoint")
  [ -n "$tokenizer" ] && extra+=(--tokenizer "$tokenizer")
  for split in val_synth eval_synth eval_real; do
    ws separate --split "$split" --model "$model" --device "$device" --batch-size "$batch_size" "${extra[@]}"
  done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log 6 "score val_synth"
  ws score --split val_synth --model "$model" --by snr
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log 7 "package system $index"
  url=()
  [ -n "$audio_url" ] && url=(--audio-url "$audio_url")
  ws package --model "$model" --index "$index" "${url[@]}" --overwrite
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  log 8 "check the submission"
  ws check "$workspace/submission"
fi
echo "== done: workspace $workspace"
