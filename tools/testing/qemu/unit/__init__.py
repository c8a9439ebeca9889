"""Unit tests of the rig's pure helpers (standard library only).

    python3 -m unittest discover -s tools/testing/qemu/unit \
        -t tools/testing/qemu
"""
