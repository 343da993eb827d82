#!/usr/bin/env python3
"""Reads a JUnit XML file with junitparser (a JUnit parser from PyPI, as CI tools use)
and prints what it found as JSON: counts, and the names of failed cases. The drill tests
compare this with what they expect; scripts/test.sh installs junitparser in a venv."""
import json
import sys

from junitparser import Failure, JUnitXml, Skipped

xml = JUnitXml.fromfile(sys.argv[1])
tests = failures = skipped = errors = 0
failed = []
for suite in xml:
    for case in suite:
        tests += 1
        for r in case.result:
            if isinstance(r, Failure):
                failures += 1
                failed.append(case.name)
            elif isinstance(r, Skipped):
                skipped += 1
            else:
                errors += 1
    # The suite's own counters must agree with its cases.
    suite_tests = sum(1 for _ in suite)
    if suite.tests != suite_tests:
        sys.exit(f"suite says tests={suite.tests}, holds {suite_tests} cases")
print(json.dumps({"tests": tests, "failures": failures, "skipped": skipped, "errors": errors, "failed": failed}))
