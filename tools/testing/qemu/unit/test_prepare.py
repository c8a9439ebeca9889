"""balloonrig.prepare.vermagic_problem: modules built for another kernel."""

import unittest
from pathlib import Path

from balloonrig.prepare import vermagic_problem

KO = Path("/m/balloon_core.ko")
KVER = "6.12.38+deb12-amd64"


class VermagicTest(unittest.TestCase):
    def test_same_release(self):
        self.assertIsNone(vermagic_problem(
            KO, f"{KVER} SMP preempt mod_unload modversions \n", KVER))

    def test_other_release(self):
        self.assertEqual(
            vermagic_problem(KO, "6.1.0-37-amd64 SMP preempt mod_unload",
                             KVER),
            f"/m/balloon_core.ko is built for 6.1.0-37-amd64, not {KVER}")

    def test_release_must_match_whole(self):
        self.assertIsNotNone(vermagic_problem(KO, f"{KVER}-dirty SMP", KVER))
        self.assertIsNotNone(vermagic_problem(KO, "6.12.38 SMP", KVER))

    def test_no_vermagic(self):
        self.assertEqual(vermagic_problem(KO, "", KVER),
                         f"/m/balloon_core.ko is built for ?, not {KVER}")


if __name__ == "__main__":
    unittest.main()
