#!/bin/bash
# Train BIKAnet on one GPU for a fixed wall-clock budget, then evaluate it: how bikanet_hf/checkpoints/bikanet-large
# was made in one 10-minute call on a lent H200.
#
#   DATA_DIR=/path/to/data OUT_DIR=runs/gpu BUDGET_S=585 bash train/train_gpu_budget.sh [more train_bikanet.py flags]
#
# DATA_DIR holds bsds500_train/, bsds500_test/, bsds500_val/ and gauss_estimates.npz (train/precompute_kernel_estimates.py
# --kernel_family gaussian on the two training folders). Steps:
#   1. a probe: the same configuration for PROBE_STEPS steps, timed between two checkpoints (start-up excluded);
#   2. the run: as many steps as fit the budget left at the probe's speed (less RESERVE_S for step 3), with a full
#      warm-up and cosine schedule; 'best' is saved at every validation, so a run cut short still leaves a model;
#   3. train/evaluate.py on bsds500_val quick + random, true kernel and blind, in float32 with TF32 off (the same
#      numbers as on a CPU), into OUT_DIR/table1.{json,md}.
# Extra flags go to both training runs, e.g. --init_from bikanet_hf/checkpoints/bikanet-large to continue that model,
# or --wiener_feature_channels 16 for a new one with the feature-space Wiener maps (benchmarks/README.md: Wiener
# deconvolution in feature space).
set -u
T0=$(date +%s)
BUDGET_S=${BUDGET_S:-585}
RESERVE_S=${RESERVE_S:-120}
PROBE_STEPS=${PROBE_STEPS:-240}
DATA_DIR=${DATA_DIR:-${BIKANET_DATA_DIR:?set DATA_DIR to the folder with the training images}}
OUT_DIR=${OUT_DIR:-runs/gpu-budget}
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
ARGS=(--hidden_size 64 --block_hidden_size 128 --num_blocks 8 --kernel_estimate_input true
  --train_dirs "$DATA_DIR/bsds500_train" "$DATA_DIR/bsds500_test" --validation_dir "$DATA_DIR/bsds500_val"
  --estimated_kernel_probability 0.5 --kernel_estimates "$DATA_DIR/gauss_estimates.npz" --crop_size 128
  --dataloader_num_workers "$WORKERS" --train_batch_size 32 --learning_rate 5e-4 --lr_warmup_steps 300
  --ema_decay 0.999 --mixed_precision bf16 --channels_last --seed 0 "$@")
# train_bikanet.py with cuDNN's autotuner on (every crop has the same size)
TRAIN=(python3 -c "import runpy, sys, torch
torch.backends.cudnn.benchmark = True
sys.argv = ['train/train_bikanet.py'] + sys.argv[1:]
runpy.run_path('train/train_bikanet.py', run_name='__main__')")
log_lines() { tr '\r' '\n' < "$1" | grep -aE "INFO bikanet|Error" | cut -c1-300 | tail -"$2"; }

# 1. The probe.
FIRST=$(( PROBE_STEPS / 6 ))
"${TRAIN[@]}" "${ARGS[@]}" --output_dir "$OUT_DIR/probe" --overwrite_output_dir --max_train_steps "$PROBE_STEPS" \
  --checkpointing_steps "$FIRST" --checkpoints_total_limit 0 --validation_steps "$PROBE_STEPS" \
  --validation_limit 2 > "$OUT_DIR/probe.log" 2>&1 || { log_lines "$OUT_DIR/probe.log" 40; exit 1; }
RATE=$(python3 -c "import json
seconds = [json.load(open('$OUT_DIR/probe/checkpoint-%d/trainer_state.json' % s))['train_seconds'] for s in ($FIRST, $PROBE_STEPS)]
print(($PROBE_STEPS - $FIRST) / (seconds[1] - seconds[0]))")
LEFT=$(( BUDGET_S - ($(date +%s) - T0) - RESERVE_S - 25 ))
STEPS=$(python3 -c "print(max(100, int($RATE * $LEFT * 0.97) // 100 * 100))")
echo "probe: $RATE steps/s; $LEFT s left for training: $STEPS steps"

# 2. The run, validated about five times.
VALIDATE=$(( (STEPS / 5 + 99) / 100 * 100 ))
timeout -s INT $(( BUDGET_S - ($(date +%s) - T0) - 60 )) "${TRAIN[@]}" "${ARGS[@]}" --output_dir "$OUT_DIR/run" \
  --overwrite_output_dir --max_train_steps "$STEPS" --checkpointing_steps "$STEPS" --validation_steps "$VALIDATE" \
  --validation_limit 16 --logging_steps 100 > "$OUT_DIR/train.log" 2>&1
echo "training exit code $?"; log_lines "$OUT_DIR/train.log" 8
MODEL=$OUT_DIR/run; [ -f "$MODEL/model.safetensors" ] || MODEL=$OUT_DIR/run/best

# 3. Table 1's bsds500_val rows, with the Wiener balance tuned on the CPU before (1e-4).
timeout $(( BUDGET_S - ($(date +%s) - T0) - 5 )) python3 -c "import runpy, sys, torch
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
sys.argv = ['train/evaluate.py'] + sys.argv[1:]
runpy.run_path('train/evaluate.py', run_name='__main__')" --model "bikanet=$MODEL" \
  --estimator bikanet_hf/checkpoints/bikanet/kernel_estimator --sets "$DATA_DIR/bsds500_val" --tracks quick random \
  --wiener_balance 0.0001 --device "$DEVICE" --threads 8 --out "$OUT_DIR/table1" > "$OUT_DIR/eval.log" 2>&1
echo "evaluation exit code $?"; cat "$OUT_DIR/table1.md" 2>/dev/null; echo "total $(( $(date +%s) - T0 )) s"
