"""Writes tests/fixtures/metrics.safetensors: golden values of the evaluation metrics
(experiments/metrics.h) for tests/experiments/test_metrics.cpp. Binary and multilabel values come
from scikit-learn (precision_score, recall_score, f1_score with zero_division=0, accuracy_score,
confusion_matrix, roc_auc_score); the Dice values from numpy restatements of MGCA's
SSLSegmenter.get_dice (mgca/models/ssl_segmenter.py) and of MONAI's DiceMetric(ignore_empty=True)
(MONAI is not installed here). Run by hand:
    python3 tests/golden/gen_metrics.py

Keys:
    binary.<c>.scores          float64 [n]: scores in [0, 1], rounded to 2 decimals (many ties,
                               some exactly at the threshold)
    binary.<c>.labels          int64 [n]: 0/1
    binary.<c>.threshold       float64 [1]: predicted positive when score >= threshold
    binary.<c>.counts          int64 [4]: tp, fp, tn, fn (confusion_matrix)
    binary.<c>.values          float64 [5]: precision, recall, f1, accuracy, roc_auc
    binary.<c>.best_threshold  float64 [1]: among the distinct scores t (ascending), the first
                               (lowest) with the largest f1_score(labels, scores >= t)
  cases <c>: balanced, threshold_0.3, few_positives, no_predicted_positive (threshold above every
  score: precision and F1 fall back to 0)
    multilabel.scores / .labels  float64 / int64 [40, 5]; label 4 has no positive
    multilabel.thresholds      float64 [5]
    multilabel.precision / .recall / .f1  float64 [5]: average=None, zero_division=0
    multilabel.auroc           float64 [5]: roc_auc_score per label, NaN where a label has one class
    multilabel.macro_f1 / .micro_f1  float64 [1]: f1_score average='macro' / 'micro'
    multilabel.macro_auroc     float64 [1]: mean of the defined per-label AUROCs
    dice.probs                 float32 [6, 1, 8, 8]: probabilities, some exactly 0.5
    dice.target                uint8 [6, 1, 8, 8]: masks; image 1 and 2 empty, image 3 non-empty
                               with an all-below-threshold prediction, image 1 also predicts none
    dice.per_image_mgca        float64 [6]: MGCA get_dice per image (empty/empty = 1)
    dice.mean_mgca             float64 [1]: their mean
    dice.mean_monai            float64 [1]: mean over images with non-empty truth
    dice.global                float64 [1]: 2*sum TP / (2*sum TP + sum FP + sum FN)
    iou.mean_empty_as_one / iou.global  float64 [1]: the same for IoU
"""
import pathlib

import numpy as np
import sklearn
import torch
from safetensors.torch import save_file
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_score,
                             recall_score, roc_auc_score)

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "metrics.safetensors"


def f64(values):
    return torch.tensor(np.asarray(values, dtype=np.float64).reshape(-1))


def binary_case(tensors, name, scores, labels, threshold):
    predicted = (scores >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    values = [
        precision_score(labels, predicted, zero_division=0),
        recall_score(labels, predicted, zero_division=0),
        f1_score(labels, predicted, zero_division=0),
        accuracy_score(labels, predicted),
        roc_auc_score(labels, scores),
    ]
    f1s = [(f1_score(labels, (scores >= t).astype(np.int64), zero_division=0), t)
           for t in np.unique(scores)]
    best = max(f1 for f1, _ in f1s)
    best_threshold = next(t for f1, t in f1s if f1 == best)
    tensors[f"binary.{name}.scores"] = f64(scores)
    tensors[f"binary.{name}.labels"] = torch.tensor(labels, dtype=torch.int64)
    tensors[f"binary.{name}.threshold"] = f64([threshold])
    tensors[f"binary.{name}.counts"] = torch.tensor([tp, fp, tn, fn], dtype=torch.int64)
    tensors[f"binary.{name}.values"] = f64(values)
    tensors[f"binary.{name}.best_threshold"] = f64([best_threshold])


def scores_for(labels, rng, separation):
    """Scores that rank positives higher on average, rounded to 2 decimals (ties)."""
    raw = rng.normal(0.0, 1.0, labels.shape) + separation * labels
    return np.round(1.0 / (1.0 + np.exp(-raw)), 2)


def multilabel(tensors, rng):
    n, num_labels = 40, 5
    labels = (rng.random((n, num_labels)) < [0.5, 0.3, 0.2, 0.1, 0.0]).astype(np.int64)
    scores = scores_for(labels, rng, 1.5)
    thresholds = np.array([0.5, 0.4, 0.6, 0.3, 0.5])
    predicted = (scores >= thresholds).astype(np.int64)
    auroc = [roc_auc_score(labels[:, l], scores[:, l]) if 0 < labels[:, l].sum() < n else np.nan
             for l in range(num_labels)]
    tensors["multilabel.scores"] = torch.tensor(scores)
    tensors["multilabel.labels"] = torch.tensor(labels)
    tensors["multilabel.thresholds"] = f64(thresholds)
    for key, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        tensors[f"multilabel.{key}"] = f64(fn(labels, predicted, average=None, zero_division=0))
    tensors["multilabel.auroc"] = f64(auroc)
    tensors["multilabel.macro_f1"] = f64([f1_score(labels, predicted, average="macro",
                                                   zero_division=0)])
    tensors["multilabel.micro_f1"] = f64([f1_score(labels, predicted, average="micro",
                                                   zero_division=0)])
    tensors["multilabel.macro_auroc"] = f64([np.nanmean(auroc)])


def mgca_get_dice(probability, truth, threshold=0.5):
    """MGCA SSLSegmenter.get_dice per image (before its mean): empty truth scores 1 iff the
    prediction is empty too."""
    p = (probability.reshape(len(truth), -1) > threshold).astype(np.float64)
    t = (truth.reshape(len(truth), -1) > 0.5).astype(np.float64)
    t_sum, p_sum = t.sum(-1), p.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice_pos = 2 * (p * t).sum(-1) / (p + t).sum(-1)
    return np.where(t_sum == 0, (p_sum == 0).astype(np.float64), dice_pos)


def monai_dice_ignore_empty(probability, truth, threshold=0.5):
    """MONAI DiceMetric(include_background=True, ignore_empty=True, reduction='mean') on binarised
    predictions: NaN for an image with empty truth, then the mean of the non-NaN values."""
    p = probability.reshape(len(truth), -1) > threshold
    t = truth.reshape(len(truth), -1) > 0.5
    inter = (p & t).sum(-1)
    denom = p.sum(-1) + t.sum(-1)
    per_image = np.where(t.sum(-1) > 0, 2.0 * inter / np.maximum(denom, 1), np.nan)
    return np.nanmean(per_image)


def dice(tensors, rng):
    n, h, w = 6, 8, 8
    target = np.zeros((n, 1, h, w), dtype=np.uint8)
    blobs = {0: (1, 1, 4), 3: (2, 3, 3), 4: (0, 4, 4), 5: (3, 0, 5)}
    for i, (y0, x0, size) in blobs.items():
        target[i, 0, y0:y0 + size, x0:x0 + size] = 1
    # A noisy prediction around the truth, so that Dice lies strictly between 0 and 1.
    probs = np.clip(0.6 * target + rng.uniform(0.0, 0.6, target.shape), 0.0, 1.0)
    probs[1] *= 0.5    # empty truth, empty prediction -> 1 under MGCA's convention
    probs[3] *= 0.3    # truth but no prediction -> 0
    probs[0, 0, 0, :4] = 0.5  # exactly at the threshold: not predicted ('>')
    probs = probs.astype(np.float32)
    per_image = mgca_get_dice(probs, target)
    p = probs.reshape(n, -1) > 0.5
    t = target.reshape(n, -1) > 0.5
    tp, fp, fn = (p & t).sum(), (p & ~t).sum(), (~p & t).sum()
    inter, union = (p & t).sum(-1), (p | t).sum(-1)
    iou = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    tensors["dice.probs"] = torch.tensor(probs)
    tensors["dice.target"] = torch.tensor(target)
    tensors["dice.per_image_mgca"] = f64(per_image)
    tensors["dice.mean_mgca"] = f64([per_image.mean()])
    tensors["dice.mean_monai"] = f64([monai_dice_ignore_empty(probs, target)])
    tensors["dice.global"] = f64([2 * tp / (2 * tp + fp + fn)])
    tensors["iou.mean_empty_as_one"] = f64([iou.mean()])
    tensors["iou.global"] = f64([tp / (tp + fp + fn)])


def main():
    rng = np.random.default_rng(6)
    tensors = {}
    labels = (rng.random(60) < 0.5).astype(np.int64)
    scores = scores_for(labels, rng, 1.0)
    scores[:4] = 0.5  # exactly at the threshold: predicted positive
    binary_case(tensors, "balanced", scores, labels, 0.5)
    labels = (rng.random(50) < 0.4).astype(np.int64)
    binary_case(tensors, "threshold_0.3", scores_for(labels, rng, 0.8), labels, 0.3)
    labels = (rng.random(80) < 0.08).astype(np.int64)
    labels[3] = 1
    binary_case(tensors, "few_positives", scores_for(labels, rng, 2.0), labels, 0.5)
    labels = (rng.random(30) < 0.5).astype(np.int64)
    binary_case(tensors, "no_predicted_positive", scores_for(labels, rng, 0.5), labels, 1.5)
    multilabel(tensors, rng)
    dice(tensors, rng)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(OUT), metadata={"sklearn": sklearn.__version__})
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
