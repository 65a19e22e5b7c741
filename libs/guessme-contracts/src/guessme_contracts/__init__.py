"""Guessme's torch-free contracts: every fact that more than one package relies on, defined once.

Each module owns one contract; import the module you need (no re-exports here, so importing one
contract never pulls in another's dependencies).
"""
