"""VMware guests: the in-tree vmw_balloon and our balloon_vmw against our
QEMU device on the backdoor port 0x5670 (tools/testing/qemu/vmw-balloon/).

The guests of the tests that measure QEMU's RSS boot with ``memtest=1``:
the kernel writes every free page once at boot, so all of the guest's
memory is resident in QEMU before a test starts, and the drop of QEMU's
RSS while the balloon inflates is what the device gave back, whichever
pages the guest chose.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from pathlib import Path

from balloonrig.runner import Context, expect, rigtest, wait_for

from .helpers import (GIB, MIB, debugfs_stats, expect_meminfo_balloon,
                      meminfo_avail, meminfo_balloon, move_balloon)

#: The device's capability bits (drivers/misc/vmw_balloon.c).
CAP_BASIC, CAP_BATCHED, CAP_2M, CAP_64BIT = 1 << 1, 1 << 2, 1 << 3, 1 << 5
#: What a host offers that batches 4 KiB pages only.
CAPS_4K = CAP_BASIC | CAP_BATCHED | CAP_64BIT

#: The part of the balloon QEMU's RSS must give back.
RSS_RETURNED = 0.98

#: The guests of the tests that measure QEMU's RSS boot with memtest=1
#: (about 5 s longer); the others do not need it.
VMW = {"mem_mib": 2048, "cmdline": ("memtest=1",)}
OURS = {"needs_modules": True, **VMW}
VMW_FAST = {"mem_mib": 2048}
OURS_FAST = {"needs_modules": True, **VMW_FAST}
FRAME = 4096
# The kernels run every VMware test; 7.3 (whose QEMU step is the
# longest of the three already) the 2 MiB round trips of both drivers, and
# 6.1 the in-tree driver's answers to an odd host only as 6.12 does, to
# keep the test command within its time budget.
BOTH = ("6.1", "6.12")
REFEREE = ("6.12",)


def qom_get(ctx: Context, prop: str):
    """A property of the guest's vmware-balloon device."""
    return ctx.guest.qmp.balloon_prop(prop)


def qom_set(ctx: Context, prop: str, value) -> None:
    """Set a property of the guest's vmware-balloon device."""
    ctx.guest.qmp.set_balloon_prop(prop, value)


def vmmemctl_current(ctx: Context) -> int:
    """The balloon's size in 4 KiB frames, from the guest's
    /sys/kernel/debug/vmmemctl (the in-tree driver's file, or our link to
    the core's view of the same name)."""
    text = ctx.guest.check("cat /sys/kernel/debug/vmmemctl")
    m = re.search(r"^current\s*:\s*(\d+)", text, re.M)
    expect(m, f"no current: line in vmmemctl: {text[:300]}")
    return int(m.group(1))


def settled_locked(ctx: Context, timeout: float = 30) -> int:
    """The device's locked count once it has held still for a second: QEMU's
    actual reaches the target within move_balloon()'s tolerance while the
    guest may still lock its last batch (512 frames were seen to arrive
    between two reads)."""
    last = [qom_get(ctx, "locked-pages")]

    def poll() -> tuple[bool, int]:
        time.sleep(1)
        now = qom_get(ctx, "locked-pages")
        still = now == last[0]
        last[0] = now
        return still, now

    return wait_for(poll, lambda v: v[0], timeout,
                    lambda v: f"the device's locked count still moving "
                    f"after {timeout:.0f} s: {v[1]}", 0)[1]


def expect_loaded(ctx: Context) -> None:
    """The guest saw VMware and the balloon driver came up."""
    ready = ctx.guest.ready
    expect(not ready.get("failed"), f"modules failed to load: {ready}")
    dmesg = ctx.guest.dmesg()
    expect("Hypervisor detected: VMware" in dmesg,
           "the guest did not detect VMware")
    wait_for(lambda: qom_get(ctx, "starts"), lambda n: n >= 1, 15,
             lambda n: "the driver never sent START", 0.5)


def vmw_cycle(ctx: Context, frames_per_page: int, ours: bool) -> str:
    """Inflate 2 GiB -> 1 GiB and back; QEMU's RSS, the device's locked
    count, the guest's vmmemctl view and MemAvailable must all agree.
    Returns a summary for the info line."""
    full = ctx.guest.spec.mem_mib * MIB
    expect_loaded(ctx)
    expect(qom_get(ctx, "locked-pages") == 0, "pages locked before the test")
    avail0 = meminfo_avail(ctx)
    rss0 = ctx.guest.qemu_rss()
    calls0 = qom_get(ctx, "hypercalls")

    inflate_s = move_balloon(ctx, full - GIB, "inflate")
    locked = settled_locked(ctx)
    expect(abs(locked * FRAME - GIB) <= 4 * MIB,
           f"the device holds {locked} frames, not 1 GiB")
    expect(full - ctx.guest.qmp.query_balloon() == locked * FRAME,
           "query-balloon disagrees with the device's locked pages")
    rss1 = ctx.guest.qemu_rss()
    returned = (rss0 - rss1) / (locked * FRAME)
    expect(returned >= RSS_RETURNED,
           f"QEMU's RSS fell by {(rss0 - rss1) // MIB} MiB only "
           f"({returned:.3f} of the balloon; {rss0 // MIB} -> "
           f"{rss1 // MIB} MiB)")
    current = vmmemctl_current(ctx)
    expect(current == locked, f"the guest's vmmemctl says {current} "
           f"frames, the device {locked}")
    if ours:
        stats = debugfs_stats(ctx)
        expect(stats["size_kib"] == locked * 4,
               f"our debugfs size {stats['size_kib']} KiB, the device "
               f"{locked * 4} KiB")
        big = stats["pages_2m"]
        expect((big > 0) == (frames_per_page > 1),
               f"{big} 2 MiB pages in the balloon with "
               f"{frames_per_page}-frame pages offered")
        # Where the kernel has "Balloon:" (7.3), 2 MiB pages count there.
        counted = meminfo_balloon(ctx) is not None
        if counted:
            expect_meminfo_balloon(ctx, "inflated")
    avail1 = meminfo_avail(ctx)
    expect(avail0 - avail1 >= 0.8 * GIB,
           f"MemAvailable fell by only {(avail0 - avail1) // MIB} MiB")
    calls = qom_get(ctx, "hypercalls") - calls0
    lock_calls = (qom_get(ctx, "calls-batched-2m-lock") +
                  qom_get(ctx, "calls-batched-lock") +
                  qom_get(ctx, "calls-lock"))

    deflate_s = move_balloon(ctx, full, "deflate")
    expect(qom_get(ctx, "locked-pages") == 0, "pages left locked")
    if ours and counted:
        expect(expect_meminfo_balloon(ctx, "deflated") == 0,
               "Balloon: not back to 0 once deflated")
    wait_for(lambda: meminfo_avail(ctx),
             lambda a: a >= avail0 - 0.1 * GIB, 90,
             lambda a: f"MemAvailable did not recover: {avail0 // MIB} -> "
             f"{a // MIB} MiB", 1)
    return (f"inflate 1 GiB {inflate_s:.1f} s, deflate {deflate_s:.1f} s, "
            f"QEMU RSS {rss0 // MIB} -> {rss1 // MIB} MiB "
            f"({returned:.3f} of the balloon returned), MemAvailable "
            f"{avail0 // MIB} -> {avail1 // MIB} MiB, {lock_calls} lock "
            f"calls, {calls} hypercalls while inflating")


@rigtest(mode="vmw-intree", **VMW)
def test_vmw_intree_2m(ctx: Context) -> None:
    """The in-tree vmw_balloon, with 2 MiB pages: 1 GiB in and out, QEMU
    gets the memory back, vmmemctl agrees with the device."""
    ctx.info(vmw_cycle(ctx, 512, ours=False))
    expect(qom_get(ctx, "calls-batched-2m-lock") > 0,
           "the in-tree driver locked no 2 MiB page")


@rigtest(mode="vmw-intree", balloon_props={"capabilities": str(CAPS_4K)},
         series=BOTH, **VMW)
def test_vmw_intree_4k(ctx: Context) -> None:
    """The in-tree vmw_balloon with a host that batches 4 KiB pages only."""
    ctx.info(vmw_cycle(ctx, 1, ours=False))
    expect(qom_get(ctx, "calls-batched-2m-lock") == 0,
           "2 MiB locks though the host does not offer them")


@rigtest(mode="vmw-ours", **OURS)
def test_vmw_ours_2m(ctx: Context) -> None:
    """Our balloon_vmw, with 2 MiB pages: 1 GiB in and out, QEMU gets the
    memory back, our debugfs and vmmemctl views agree with the device."""
    ctx.info(vmw_cycle(ctx, 512, ours=True))


@rigtest(mode="vmw-ours", balloon_props={"capabilities": str(CAPS_4K)},
         series=BOTH, **OURS)
def test_vmw_ours_4k(ctx: Context) -> None:
    """Our balloon_vmw with a host that batches 4 KiB pages only."""
    ctx.info(vmw_cycle(ctx, 1, ours=True))
    expect(qom_get(ctx, "calls-batched-2m-lock") == 0,
           "2 MiB locks though the host does not offer them")


@rigtest(mode="vmw-ours", balloon_props={"capabilities": str(CAP_BASIC)},
         series=BOTH, **OURS)
def test_vmw_ours_protocol2(ctx: Context) -> None:
    """Our balloon_vmw with a protocol-2 host (START answers plain
    SUCCESS, one page per LOCK/UNLOCK, no batching)."""
    ctx.info(vmw_cycle(ctx, 1, ours=True))
    batched = (qom_get(ctx, "calls-batched-lock") +
               qom_get(ctx, "calls-batched-2m-lock"))
    expect(batched == 0, f"{batched} batched calls to a protocol-2 host")
    expect(qom_get(ctx, "calls-lock") >= GIB // FRAME,
           "fewer single LOCKs than pages")


def refuse_pin(ctx: Context, ours: bool) -> None:
    """A host that refuses every 97th page (NOTNEEDED) and pins every 89th
    (PINNED): the balloon still reaches 1 GiB, and the host holds exactly
    what the driver says it holds."""
    expect_loaded(ctx)
    qom_set(ctx, "refuse-every", 97)
    qom_set(ctx, "pin-every", 89)
    full = ctx.guest.spec.mem_mib * MIB
    inflate_s = move_balloon(ctx, full - GIB, "inflate")
    refused, pinned = qom_get(ctx, "refused"), qom_get(ctx, "pinned")
    expect(refused > 0 and pinned > 0,
           f"host refused {refused} and pinned {pinned} pages")
    locked = settled_locked(ctx)
    wait_for(lambda: vmmemctl_current(ctx), lambda n: n == locked, 10,
             lambda n: f"the guest's vmmemctl says {n} frames, the device "
             f"{locked}", 0.5)
    if ours:
        expect(debugfs_stats(ctx)["size_kib"] == locked * 4,
               "our debugfs disagrees with the device")
    qom_set(ctx, "refuse-every", 0)
    qom_set(ctx, "pin-every", 0)
    move_balloon(ctx, full, "deflate")
    expect(qom_get(ctx, "locked-pages") == 0, "pages left locked")
    ctx.info(f"inflate 1 GiB {inflate_s:.1f} s with {refused} pages "
             f"refused and {pinned} pinned")


@rigtest(mode="vmw-intree", series=REFEREE, **VMW_FAST)
def test_vmw_intree_refuse_pin(ctx: Context) -> None:
    """The in-tree vmw_balloon with a host that refuses and pins pages."""
    refuse_pin(ctx, ours=False)


@rigtest(mode="vmw-ours", series=BOTH, **OURS_FAST)
def test_vmw_ours_refuse_pin(ctx: Context) -> None:
    """Our balloon_vmw with a host that refuses and pins pages."""
    refuse_pin(ctx, ours=True)


def reset_mid_inflate(ctx: Context, ours: bool) -> None:
    """The host demands a reset in the middle of an inflation: the driver
    drops every page, redoes the handshake and inflates to the target
    again, and then holds what the host holds."""
    expect_loaded(ctx)
    full = ctx.guest.spec.mem_mib * MIB
    starts0 = qom_get(ctx, "starts")
    resets0 = qom_get(ctx, "resets")
    ctx.guest.qmp.balloon(full - GIB)
    # 4 KiB batches (512 per GiB): the reset lands half-way.
    wait_for(lambda: qom_get(ctx, "locked-pages"),
             lambda n: n * FRAME >= 256 * MIB, 120,
             lambda n: f"only {n} frames locked", 0.1)
    at_reset = qom_get(ctx, "locked-pages")
    qom_set(ctx, "reset", True)
    expect(at_reset * FRAME < GIB - 4 * MIB,
           f"the inflation was over ({at_reset} frames) before the reset")
    expect(qom_get(ctx, "resets") == resets0 + 1, "the device did not reset")
    wait_for(lambda: qom_get(ctx, "starts"), lambda n: n > starts0, 30,
             lambda n: "no START after the reset", 0.2)
    t0 = time.monotonic()
    res = ctx.guest.qmp.wait_balloon(full - GIB, timeout=180,
                                     tolerance=4 * MIB, interval=0.25)
    expect(res.reached, f"target not reached after the reset: actual "
           f"{res.actual // MIB} MiB")
    # A driver that kept its pages over the reset holds more than the host.
    locked = settled_locked(ctx)
    wait_for(lambda: vmmemctl_current(ctx), lambda n: n == locked, 10,
             lambda n: f"after the reset the guest's vmmemctl says {n} "
             f"frames, the device {locked}", 0.5)
    if ours:
        stats = debugfs_stats(ctx)
        expect(stats["size_kib"] == locked * 4,
               f"after the reset our debugfs says {stats['size_kib']} KiB, "
               f"the device {locked * 4} KiB")
        expect(stats["start"] >= 2, f"our start counter {stats['start']}")
    move_balloon(ctx, full, "deflate")
    expect(qom_get(ctx, "locked-pages") == 0, "pages left locked")
    ctx.info(f"target reached {time.monotonic() - t0:.1f} s after the "
             f"reset; {qom_get(ctx, 'starts') - starts0} START(s)")


@rigtest(mode="vmw-intree", balloon_props={"capabilities": str(CAPS_4K)},
         series=REFEREE, **VMW_FAST)
def test_vmw_intree_reset(ctx: Context) -> None:
    """The in-tree vmw_balloon when the host demands a reset mid-inflate:
    what the device does is what the referee expects."""
    reset_mid_inflate(ctx, ours=False)


@rigtest(mode="vmw-ours", balloon_props={"capabilities": str(CAPS_4K)},
         series=BOTH, **OURS_FAST)
def test_vmw_ours_reset(ctx: Context) -> None:
    """Our balloon_vmw when the host demands a reset mid-inflate: every
    page dropped, handshake redone, target reached again."""
    reset_mid_inflate(ctx, ours=True)


@rigtest(mode="vmw-intree", balloon_props={"capabilities": str(CAP_BASIC)},
         series=REFEREE, **VMW)
def test_vmw_intree_protocol2(ctx: Context) -> None:
    """The in-tree vmw_balloon with a protocol-2 host: one page per
    LOCK/UNLOCK, no batching."""
    ctx.info(vmw_cycle(ctx, 1, ours=False))
    expect(qom_get(ctx, "calls-lock") >= GIB // FRAME,
           "fewer single LOCKs than pages")


@rigtest(mode="vmw-intree", series=BOTH, **VMW_FAST)
def test_vmw_intree_unload_full(ctx: Context) -> None:
    """Unloading the in-tree vmw_balloon with 1 GiB ballooned: it sends
    START(0) and frees its pages without unlocking them, so the host must
    forget them at that START."""
    unload_full(ctx, "vmw_balloon")


def unload_full(ctx: Context, module: str) -> None:
    """rmmod *module* with 1 GiB ballooned: the host sees every page back
    (locked-pages 0, actual the whole guest) and so does the guest."""
    expect_loaded(ctx)
    full = ctx.guest.spec.mem_mib * MIB
    avail0 = meminfo_avail(ctx)
    move_balloon(ctx, full - GIB, "inflate")
    expect(qom_get(ctx, "locked-pages") * FRAME >= GIB - 4 * MIB,
           "balloon not full")
    ctx.guest.check(f"rmmod {module}")
    expect(qom_get(ctx, "locked-pages") == 0,
           f"{qom_get(ctx, 'locked-pages')} frames still locked after unload")
    expect(ctx.guest.qmp.query_balloon() == full, "actual is not all of RAM")
    wait_for(lambda: meminfo_avail(ctx),
             lambda a: a >= avail0 - 0.1 * GIB, 90,
             lambda a: f"MemAvailable did not recover: {avail0 // MIB} -> "
             f"{a // MIB} MiB", 1)


@rigtest(mode="vmw-ours", series=BOTH, **OURS_FAST)
def test_vmw_ours_unload_full(ctx: Context) -> None:
    """Unloading balloon_vmw with 1 GiB ballooned: the host sees every page
    back and the guest gets the memory back."""
    unload_full(ctx, "balloon_vmw")


#: A guest program that sends the backdoor any command (vmw-probe.c).
PROBE_SRC = Path(__file__).resolve().parents[1] / "vmw-balloon" / "vmw-probe.c"


def install_probe(ctx: Context) -> None:
    """Build vmw-probe on the host (no libc: a few KiB) and copy it into
    the guest as /vmw-probe, through the command channel."""
    exe = ctx.guest.workdir / "vmw-probe"
    subprocess.run(["gcc", "-static", "-nostdlib", "-Os", "-s",
                    "-fno-stack-protector", "-fno-pie", "-no-pie", "-o",
                    str(exe), str(PROBE_SRC)], check=True,
                   capture_output=True)
    data = base64.b64encode(exe.read_bytes()).decode()
    ctx.guest.check("rm -f /vmw-probe.b64")
    for i in range(0, len(data), 3000):
        ctx.guest.check(f"echo {data[i:i + 3000]} >> /vmw-probe.b64")
    ctx.guest.check("base64 -d /vmw-probe.b64 > /vmw-probe && "
                    "chmod +x /vmw-probe")


def probe(ctx: Context, *args: str) -> dict[str, str]:
    """Run vmw-probe in the guest; its "key=value" output as a dict."""
    out = ctx.guest.check("/vmw-probe " + " ".join(args))
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def expect_answers(ctx: Context,
                   checks: list[tuple[str, tuple[str, ...], dict]]) -> None:
    """Run vmw-probe for each (what, arguments, expected key=values)."""
    for what, args, want in checks:
        got = probe(ctx, *args)
        wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        expect(not wrong, f"{what} (vmw-probe {' '.join(args)}): got "
               f"{got}, expected {want}")


#: Commands before START.
BAD_INPUT_UNSTARTED = [
    ("wrong magic", ("0", "3e", "0", "12345678"), {"status": "ffffffff"}),
    ("LOCK before START", ("2", "100", "1"), {"status": "7"}),
    ("GET_TARGET before START", ("1", "80000", "0"), {"status": "7"}),
]

#: Commands after START(all capabilities).
BAD_INPUT_STARTED = [
    ("START", ("0", "3e", "0"), {"status": "3000000", "ecx": "2e"}),
    ("GUEST_ID", ("4", "1", "0"), {"status": "0"}),
    ("GET_TARGET", ("1", "80000", "0"), {"status": "0", "ebx": "0"}),
    ("command 5", ("5", "0", "0"), {"status": "1"}),
    ("command 11", ("b", "0", "0"), {"status": "1"}),
    ("command 0x12345", ("12345", "0", "0"), {"status": "1"}),
    ("VMCI_DOORBELL_SET", ("a", "1", "2"), {"status": "1"}),
    ("LOCK beyond RAM", ("2", "7fffffff", "1"), {"status": "2"}),
    ("LOCK in the PCI hole", ("2", "c0000", "1"), {"status": "2"}),
    ("LOCK of the BIOS ROM", ("2", "fffff", "1"), {"status": "2"}),
    ("UNLOCK of a page never locked", ("3", "100", "1"), {"status": "4"}),
    ("batch of 513", ("6", "100", "201"), {"status": "1"}),
    ("batch page beyond RAM", ("6", "7fffffff", "1"), {"status": "2"}),
    ("empty batch", ("batch", "6", "0"), {"status": "0"}),
    ("2 MiB LOCK, misaligned", ("batch", "8", "1", "v1"),
     {"status": "0", "entries": "2"}),
    ("2 MiB UNLOCK, misaligned", ("batch", "9", "1", "v1"),
     {"status": "0", "entries": "2"}),
]

#: After the guest detached with START(0): no lock command is granted.
BAD_INPUT_DETACHED = [
    ("START(0)", ("0", "0", "0"), {"status": "3000000", "ecx": "2e"}),
    ("LOCK after START(0)", ("2", "100", "1"), {"status": "1"}),
    ("batched LOCK after START(0)", ("6", "100", "1"), {"status": "1"}),
]


@rigtest(mode="vmw-none", mem_mib=2048, series=REFEREE)
def test_vmw_device_bad_input(ctx: Context) -> None:
    """What no driver sends gets a status, never a QEMU crash: a wrong
    magic, commands before START, unknown and unnegotiated commands, PFNs
    beyond RAM, in the PCI hole or in ROM, a batch of 513, a batch page
    that is not RAM, double locks and unlocks, a misaligned 2 MiB page."""
    install_probe(ctx)
    expect_answers(ctx, BAD_INPUT_UNSTARTED + BAD_INPUT_STARTED)
    # In one process, so that "v" stays the same page: lock (with two bad
    # PFNs beside it), lock again, unlock, unlock again.
    seq = ("batch", "6", "3", "v", "7fffffff", "c0000", "--", "6", "1", "v",
           "--", "7", "1", "v", "--", "7", "1", "v")
    lines = ctx.guest.check("/vmw-probe " + " ".join(seq)).split()
    want = ["status=0", "entries=0,2,2", "status=0", "entries=3",
            "status=0", "entries=0", "status=0", "entries=4"]
    expect(lines == want, f"batched lock, lock, unlock, unlock of one "
           f"page: {lines}, expected {want}")
    expect_answers(ctx, BAD_INPUT_DETACHED)
    expect(qom_get(ctx, "locked-pages") == 0, "pages left locked")
    full = ctx.guest.spec.mem_mib * MIB
    expect(ctx.guest.qmp.query_balloon() == full, "actual is not all RAM")
    ctx.info(f"{qom_get(ctx, 'hypercalls')} hypercalls answered as "
             f"expected")
