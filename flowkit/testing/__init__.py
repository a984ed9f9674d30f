"""Helpers for testing operators, built-in or your own.

:func:`check_operator` runs an operator through every clause of the operator
contract (``docs/operators.md``) and fails with a message naming the clause
it broke.
"""

from ._checker import ContractViolation, check_operator

__all__ = ["ContractViolation", "check_operator"]
