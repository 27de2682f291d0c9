"""Checkers for students: hand-computed matrices (:mod:`.matrices`) and their own layers
(:mod:`.layer`). Each returns a :class:`CheckReport` whose text says what is wrong."""

from .answers import AnswersReport, check_answers
from .entries import MalformedAnswerError, read_matrix
from .layer import check_layer
from .matrices import check_adjacency, check_laplacian, check_matrix
from .report import CheckReport
from .step import check_laplacian_step

__all__ = [
    "AnswersReport",
    "CheckReport",
    "MalformedAnswerError",
    "check_adjacency",
    "check_answers",
    "check_laplacian",
    "check_laplacian_step",
    "check_layer",
    "check_matrix",
    "read_matrix",
]
