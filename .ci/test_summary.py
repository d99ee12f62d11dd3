#!/usr/bin/python3
"""Counts test cases from Bazel Build Event Protocol JSON files.

Usage: test_summary.py BEP_JSON_FILE...

Several files are one run in parts (CI runs the tests a normal user can run
as a normal user, then the rest as root): a target filtered out of one part
has its result in another.

Reads each test target's final result and its test.xml (JUnit XML, written by
GoogleTest or by Bazel itself), and prints one line per failing or skipped case
followed by the closing line CI reads:

    N passed, N failed, N skipped

A target that did not pass but whose XML shows no failing case (a crash, a
timeout, a test that failed to build) counts as one failed case, so nothing
is lost. Exits 1 if anything failed or no test ran.
"""

import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET


def xml_cases(path):
    """Yields (name, outcome) for each testcase in a JUnit XML file."""
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = "%s.%s" % (case.get("classname", ""), case.get("name", ""))
        if case.find("failure") is not None or case.find("error") is not None:
            yield name, "failed"
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            yield name, "skipped"
        else:
            yield name, "passed"


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    tests = set()  # Labels of configured test targets.
    results = {}  # Label -> (status, test.xml path or None), last attempt.
    cached = set()  # Labels whose result came from a cache.
    for path in argv[1:]:
        with open(path) as f:
            for line in f:
                event = json.loads(line)
                ident = event.get("id", {})
                if "targetConfigured" in ident and "testSize" in event.get(
                        "configured", {}):
                    tests.add(ident["targetConfigured"]["label"])
                if "testResult" in ident and "testResult" in event:
                    label = ident["testResult"]["label"]
                    xml = None
                    for output in event["testResult"].get("testActionOutput", []):
                        if output.get("name") == "test.xml" and "uri" in output:
                            xml = urllib.parse.urlparse(output["uri"]).path
                    results[label] = (event["testResult"].get("status"), xml)
                    result = event["testResult"]
                    if result.get("cachedLocally") or result.get(
                            "executionInfo", {}).get("cachedRemotely"):
                        cached.add(label)
                    else:
                        cached.discard(label)

    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for label in sorted(tests | set(results)):
        status, xml = results.get(label, ("NOT_RUN", None))
        cases = []
        if xml is not None:
            try:
                cases = list(xml_cases(xml))
            except (OSError, ET.ParseError) as e:
                print("%s: unreadable test.xml: %s" % (label, e))
        for name, outcome in cases:
            counts[outcome] += 1
            if outcome != "passed":
                print("%s %s: %s" % (outcome.upper(), label, name))
        target_ok = status in ("PASSED", "FLAKY")
        if not target_ok and not any(o == "failed" for _, o in cases):
            counts["failed"] += 1
            print("FAILED %s: target %s" % (label, status))
        elif target_ok and not cases:
            counts["passed"] += 1

    ran = len(results) - len(cached & set(results))
    print("%d test targets: %d ran now, %d reported from the cache "
          "(unchanged inputs)" % (len(results), ran, len(cached & set(results))))
    print("%d passed, %d failed, %d skipped" %
          (counts["passed"], counts["failed"], counts["skipped"]))
    return 0 if counts["failed"] == 0 and counts["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
