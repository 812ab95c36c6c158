"""Tests of the accounting API clients and their fakes."""
