"""balloonrig.backports and the 7.x parts of balloonrig.kernels: the
private apt list, picking the newest release, the split image's layout."""

import fcntl
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from balloonrig import backports, kernels, lock

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class MirrorTest(unittest.TestCase):
    def test_deb822_takes_the_archive_not_security(self):
        self.assertEqual(backports.mirror_from_deb822(DEB822),
                         "http://deb.debian.org/debian")

    def test_deb822_security_first(self):
        first, second = DEB822.split("\n\n")
        self.assertEqual(
            backports.mirror_from_deb822(second + "\n" + first),
            "http://deb.debian.org/debian")

    def test_deb822_skips_disabled_and_deb_src(self):
        text = ("Types: deb-src\nURIs: http://src.example/debian\n"
                "Suites: bookworm\n\n"
                "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\n"
                "Suites: bookworm\n\n" + DEB822)
        self.assertEqual(backports.mirror_from_deb822(text),
                         "http://deb.debian.org/debian")

    def test_deb822_none(self):
        self.assertIsNone(backports.mirror_from_deb822("# nothing\n"))

    def test_one_line_list(self):
        text = ("# comment\n"
                "deb http://security.debian.org/debian-security "
                "bookworm-security main\n"
                "deb-src http://mirror.example/debian bookworm main\n"
                "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/"
                "debian/ bookworm main contrib\n")
        self.assertEqual(backports.mirror_from_list(text),
                         "http://mirror.example/debian")

    def test_system_mirror_falls_back(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = Path(tmp) / "debian.sources"
            self.assertEqual(backports.system_mirror((missing,)),
                             backports.DEFAULT_MIRROR)
            listfile = Path(tmp) / "sources.list"
            listfile.write_text("deb http://m.example/debian bookworm main\n")
            self.assertEqual(backports.system_mirror((missing, listfile)),
                             "http://m.example/debian")

    def test_sources_list(self):
        self.assertEqual(
            backports.sources_list("http://m.example/debian"),
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
            " http://m.example/debian trixie-backports main\n")

    def test_security_mirror(self):
        self.assertEqual(backports.mirror_from_deb822(DEB822, security=True),
                         "http://deb.debian.org/debian-security")
        text = ("deb http://m.example/debian bookworm main\n"
                "deb http://s.example/ds bookworm-security main\n")
        self.assertEqual(backports.mirror_from_list(text, security=True),
                         "http://s.example/ds")
        with tempfile.TemporaryDirectory() as tmp:
            only = Path(tmp) / "sources.list"
            only.write_text("deb http://m.example/debian bookworm main\n")
            self.assertEqual(backports.system_mirror((only,), security=True),
                             "http://m.example/debian-security")

    def test_sources_list_security_suite(self):
        text = backports.sources_list(
            "http://m/debian", ("bookworm", "bookworm-security"),
            security="http://s/ds")
        self.assertEqual([ln.split()[2:4] for ln in text.splitlines()],
                         [["http://m/debian", "bookworm"],
                          ["http://s/ds", "bookworm-security"]])

    def test_sources_list_deb_src(self):
        self.assertEqual(
            backports.sources_list("http://m.example/debian", ("bookworm",),
                                   "deb-src"),
            "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring"
            ".gpg] http://m.example/debian bookworm main\n")


class DscTest(unittest.TestCase):
    def test_newest_by_debian_order(self):
        names = ["qemu_7.2+dfsg-7+deb12u9.dsc", "qemu_7.2+dfsg-7+deb12u10.dsc",
                 "qemu_7.2+dfsg-7+deb12u2.dsc"]
        got = backports.newest_dsc([Path(n) for n in names])
        self.assertEqual(got.name, "qemu_7.2+dfsg-7+deb12u10.dsc")

    def test_version_from_name(self):
        self.assertEqual(backports.dsc_version(
            Path("/x/qemu_7.2+dfsg-7+deb12u10.dsc")), "7.2+dfsg-7+deb12u10")


class PackageTest(unittest.TestCase):
    def test_parse_depends(self):
        self.assertEqual(
            backports.parse_depends(
                "linux-base-amd64 (= 7.3.4-1~bpo13+1), "
                "linux-image-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), "
                "dracut | initramfs-tools (>= 0.120), kmod:any"),
            ["linux-base-amd64", "linux-image-7.3.4+deb13-amd64", "dracut",
             "initramfs-tools", "kmod"])
        self.assertEqual(backports.parse_depends(""), [])

    def test_deb_filename(self):
        self.assertEqual(
            backports.deb_filename("linux-source-7.3", "7.3.4-1~bpo13+1",
                                   "all"),
            "linux-source-7.3_7.3.4-1~bpo13+1_all.deb")
        self.assertEqual(backports.deb_filename("p", "1:2.0-1", "amd64"),
                         "p_1%3a2.0-1_amd64.deb")

    def test_options_keep_the_system_sources_out(self):
        apt = backports.PrivateApt(Path("/c/apt"), mirror="http://m/d")
        opts = apt.options()
        self.assertIn("Dir::Etc::SourceParts=/dev/null", opts)
        self.assertIn("Dir::Etc::SourceList=/c/apt/sources.list", opts)
        self.assertIn("Dir::State::Lists=/c/apt/lists", opts)
        self.assertIn("Dir::Cache=/c/apt/cache", opts)
        self.assertFalse(any("Architecture" in o for o in opts))

    def test_foreign_architecture_alone(self):
        opts = backports.PrivateApt(Path("/c/a"), mirror="http://m/d",
                                    arch="arm64").options()
        self.assertIn("APT::Architecture=arm64", opts)
        self.assertIn("APT::Architectures::=arm64", opts)


class NewestTest(unittest.TestCase):
    BINARIES = ["linux-binary-7.3.4+deb13-amd64",
                "linux-binary-7.3.10+deb13-amd64",
                "linux-binary-7.3.10+deb13-cloud-amd64",
                "linux-binary-unsigned-7.3.12+deb13-amd64",
                "linux-binary-7.30.1+deb13-amd64"]

    def test_from_the_metapackage(self):
        deps = ["linux-base-amd64", "linux-image-7.3.4+deb13-amd64",
                "linux-modules-amd64"]
        self.assertEqual(
            kernels.newest_backports("7.3", deps, self.BINARIES),
            "7.3.4+deb13-amd64")

    def test_metapackage_of_another_series(self):
        deps = ["linux-image-7.4.1+deb13-amd64"]
        self.assertEqual(
            kernels.newest_backports("7.3", deps, self.BINARIES),
            "7.3.10+deb13-amd64")

    def test_none(self):
        self.assertIsNone(kernels.newest_backports(
            "7.3", [], ["linux-binary-7.4.1+deb13-amd64"]))

    def test_series_of(self):
        self.assertEqual(kernels.series_of("7.3.4+deb13-amd64"), "7.3")
        self.assertIsNone(kernels.series_of("7.3.4+deb13-cloud-amd64"))
        self.assertIn("7.3", kernels.BACKPORTS)

    def test_arm64_flavours(self):
        binaries = ["linux-binary-7.3.4+deb13-arm64",
                    "linux-binary-7.3.4+deb13-arm64-16k",
                    "linux-binary-7.3.5+deb13-arm64-16k"]
        self.assertEqual(kernels.newest_backports("7.3-arm64", [], binaries),
                         "7.3.4+deb13-arm64")
        self.assertEqual(kernels.newest_backports("7.3-arm64-16k", [],
                                                  binaries),
                         "7.3.5+deb13-arm64-16k")
        self.assertEqual(kernels.series_of("7.3.4+deb13-arm64-16k"),
                         "7.3-arm64-16k")
        self.assertEqual(kernels.series_of("7.3.4+deb13-arm64"), "7.3-arm64")
        self.assertEqual(kernels.series_of("6.1.0-57-arm64"), "6.1-arm64")
        self.assertEqual(kernels.series_of("6.12.118+deb12-arm64"),
                         "6.12-arm64")

    def test_arch_and_flavour(self):
        self.assertEqual(kernels.arch_of("7.3-arm64-16k"), "arm64")
        self.assertEqual(kernels.arch_of("6.1.0-57-arm64"), "arm64")
        self.assertEqual(kernels.arch_of("6.12"), "amd64")
        self.assertEqual(kernels.flavour("7.3-arm64-16k"), "arm64-16k")
        self.assertEqual(kernels.flavour("7.3"), "amd64")
        self.assertEqual(kernels.base_series("6.12-arm64"), "6.12")
        self.assertEqual(kernels.MAKE_ARGS["arm64"],
                         ("ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"))

    def test_where_packages_come_from(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.assertIsNone(kernels.series_apt("6.12", tmp))
            bpo = kernels.series_apt("7.3", tmp)
            self.assertEqual(bpo.root.name, "apt-trixie-backports")
            self.assertIsNone(bpo.arch)
            arm = kernels.series_apt("7.3.4+deb13-arm64-16k", tmp)
            self.assertEqual(arm.root.name, "apt-trixie-backports-arm64")
            self.assertEqual(arm.arch, "arm64")
            b12 = kernels.series_apt("6.1-arm64", tmp)
            self.assertEqual(b12.root.name, "apt-bookworm-arm64")
            self.assertEqual(b12.suites, kernels.BOOKWORM_SUITES)


class SplitImageTest(unittest.TestCase):
    """7.x puts vmlinuz and config under usr/lib/modules/KVER/."""

    def test_paths(self):
        kver = "7.3.4+deb13-amd64"
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            mod = root / "usr/lib/modules" / kver
            mod.mkdir(parents=True)
            (mod / "vmlinuz").write_bytes(b"")
            (mod / "config").write_text("CONFIG_BALLOON=y\n# c\n")
            img = kernels.KernelImage(kver, root)
            self.assertEqual(img.vmlinuz, mod / "vmlinuz")
            self.assertEqual(img.moddir, mod)
            self.assertEqual(img.config(), {"CONFIG_BALLOON": "y"})
            self.assertEqual(img.series, "7.3")

    def test_boot_layout_first(self):
        kver = "6.12.117+deb12-amd64"
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "boot").mkdir()
            (root / "boot" / f"vmlinuz-{kver}").write_bytes(b"")
            img = kernels.KernelImage(kver, root)
            self.assertEqual(img.vmlinuz, root / "boot" / f"vmlinuz-{kver}")


class LockTest(unittest.TestCase):
    def test_inherited_fd(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "heavy.lock"
            other = Path(tmp) / "other"
            with open(path, "a") as f, open(other, "a") as g:
                self.assertEqual(lock.inherited_fd(path, f.fileno()),
                                 f.fileno())
                self.assertIsNone(lock.inherited_fd(path, g.fileno()))
            self.assertIsNone(lock.inherited_fd(path, 1000))

    def test_reentrant_on_inherited_fd(self):
        """A child started with the locked descriptor 9 takes the lock at
        once; one without it would wait (here: fails its non-blocking
        try)."""
        child = ("import sys; from pathlib import Path; "
                 "from balloonrig import lock; "
                 "lock.heavy_lock(Path(sys.argv[1]), sys.stderr); "
                 "print('locked')")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        with tempfile.TemporaryDirectory() as tmp:
            with open(Path(tmp) / "heavy.lock", "a") as held:
                fcntl.flock(held, fcntl.LOCK_EX)
                try:  # ours may be a shell's descriptor 9: keep it
                    saved = os.dup(lock.SHELL_FD)
                except OSError:
                    saved = None
                os.dup2(held.fileno(), lock.SHELL_FD)
                try:
                    res = subprocess.run(
                        [sys.executable, "-c", child, tmp], env=env,
                        pass_fds=(lock.SHELL_FD,), capture_output=True,
                        text=True, timeout=20, check=False)
                finally:
                    if saved is None:
                        os.close(lock.SHELL_FD)
                    else:
                        os.dup2(saved, lock.SHELL_FD)
                        os.close(saved)
                self.assertEqual(res.stdout, "locked\n", res.stderr)
                self.assertNotIn("waiting", res.stderr)

if __name__ == "__main__":
    unittest.main()
