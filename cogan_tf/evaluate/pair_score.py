"""The CoGAN paper's score of a pair of domains, for any pair of cogan_tf/pairs.py (docs/ORIGINAL.md §5.3).

For each z, G1(z) is mapped into the second domain with the pair's own transform (the one that made the
training files) and compared with G2(z) pixel by pixel; the score is the fraction of agreeing pixels
over all pairs. The paper does not say how two grey pixels "agree"; here both images are binarised at
``threshold`` (0.5 by default) and a pixel agrees when both are on or both are off. The mean absolute
difference beside it needs no threshold.

Agreement alone rewards two blank images (both all background agree everywhere), so each domain's ink
is reported beside it: the fraction of its pixels that differ from the domain's blank image (black for
digits, edges and rotations; white for negatives) once binarised, and the fraction of its images that
are blank (fewer than ``BLANK_INK`` of their pixels inked). A score whose pairs are mostly blank in both
domains carries a warning. Pure numpy: the classifier's part of the report is elsewhere.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from cogan_tf import pairs
from cogan_tf.evaluate.image_metrics import BINARY_THRESHOLD, Mean, binarize

DEFAULT_THRESHOLD = BINARY_THRESHOLD
# An image with less than this fraction of its pixels inked is blank: 7 of 784 pixels or fewer. Each of
# MNIST's 70,000 digits has 15 or more at the 0.5 threshold, each of their edge images 32 or more.
BLANK_INK = 0.01
# The warning: more than this fraction of the pairs blank in both domains (real data: none).
BLANK_PAIRS_WARNING = 0.1


def check_threshold(threshold: float) -> None:
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"agreement threshold {threshold}: must be between 0 and 1")


def second_domain(pair: str, top) -> np.ndarray:
    """G1(z) (floats in [0, 1]) mapped into the second domain: the pair's transform."""
    return pairs.transform(pair, np.asarray(top, np.float32))


def agreeing(pair: str, top, bot, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Per pixel: does the transform of ``top`` agree with ``bot`` once both are binarised."""
    t, b = second_domain(pair, top), np.asarray(bot)
    if t.shape != b.shape:
        raise ValueError(f"pair score: shapes {t.shape} and {b.shape} differ")
    return binarize(t, threshold) == binarize(b, threshold)


def pixel_agreement(pair: str, top, bot, threshold: float = DEFAULT_THRESHOLD) -> float:
    """The paper's average pixel agreement ratio of pairs (G1(z), G2(z)) of ``pair``."""
    return float(np.mean(agreeing(pair, top, bot, threshold)))


def blank_image(pair: str, domain: int, like) -> np.ndarray:
    """A blank image of ``domain`` (1 or 2), binarised: no ink in the first domain, its transform in the
    second (all white for negatives)."""
    zero = np.zeros((1,) + np.asarray(like).shape[1:], np.float32)
    return binarize(zero if domain == 1 else pairs.transform(pair, zero))


def ink(pair: str, domain: int, images, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Per image: the fraction of its pixels that differ from the domain's blank image once binarised."""
    x = np.asarray(images)
    inked = binarize(x, threshold) != blank_image(pair, domain, x)
    return inked.reshape(len(x), -1).mean(axis=1)


class PairScoreSums:
    """The score of a pair, accumulated batch by batch (``add``), in memory independent of the number
    of pairs; ``value()`` is the report's ``pairs`` section (without the classifier's label agreement)."""

    def __init__(self, pair: str, threshold: float = DEFAULT_THRESHOLD):
        pairs.check_pair(pair)
        check_threshold(threshold)
        self.pair, self.threshold = pair, threshold
        self.agree, self.difference = Mean(), Mean()
        self.ink = {"top": Mean(), "bot": Mean()}
        self.blank = {"top": Mean(), "bot": Mean(), "both": Mean()}

    def add(self, top, bot) -> None:
        """One batch of G1(z) and G2(z), floats in [0, 1] of shape (N, 28, 28, 1)."""
        t2 = second_domain(self.pair, top)
        b = np.asarray(bot, np.float32)
        if t2.shape != b.shape:
            raise ValueError(f"pair score: shapes {t2.shape} and {b.shape} differ")
        self.agree.add(np.sum(binarize(t2, self.threshold) == binarize(b, self.threshold)), b.size)
        self.difference.add(np.sum(np.abs(t2.astype(np.float64) - b)), b.size)
        blank = {}
        for name, domain, x in (("top", 1, top), ("bot", 2, b)):
            each = ink(self.pair, domain, x, self.threshold)
            self.ink[name].add(np.sum(each), len(each))
            blank[name] = each < BLANK_INK
            self.blank[name].add(np.sum(blank[name]), len(each))
        self.blank["both"].add(np.sum(blank["top"] & blank["bot"]), len(b))

    def value(self) -> dict:
        blank = {k: v.value() for k, v in self.blank.items()}
        return {"pair": self.pair, "threshold": self.threshold, "pixel_agreement": self.agree.value(),
                "mean_abs_difference": self.difference.value(),
                "ink": {k: v.value() for k, v in self.ink.items()}, "blank": blank,
                "warning": blank_warning(blank["both"])}


def blank_warning(both_blank: float) -> Optional[str]:
    """The line a report carries when most of its agreement comes from pairs blank in both domains."""
    if both_blank <= BLANK_PAIRS_WARNING:
        return None
    return (f"both domains blank in {100 * both_blank:.0f}% of the pairs: their pixels agree without any "
            "coupling; read the agreement with the ink and classifier scores")


def real_ink(pair: str, images, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """The ink of real first-domain ``images`` (uint8 or [0, 1]) and of their transform: the floor to
    read a model's ink against."""
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return {"top": float(np.mean(ink(pair, 1, x, threshold))),
            "bot": float(np.mean(ink(pair, 2, pairs.transform(pair, x), threshold)))}
