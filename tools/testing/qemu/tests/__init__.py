"""The QEMU tests, by area.

Importing a module registers its tests (:func:`balloonrig.runner.rigtest`);
``run_tests.py`` imports them all, in the order they run.
"""
