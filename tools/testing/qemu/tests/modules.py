"""Our modules: aliases, loading and unloading, parameters, tracepoints,
balloon_vmw off VMware, the modprobe.d blacklist."""

from __future__ import annotations

import base64

from balloonrig import initramfs
from balloonrig.parse import trace_fields
from balloonrig.runner import Context, expect, rigtest

from .helpers import MIB, OUR_MODULES, move_balloon


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_virtio_alias_one_driver(ctx: Context) -> None:
    """The module alias matches the balloon device, as the in-tree driver's
    does; with both loaded, whichever came first keeps the device, and the
    other loads and unloads cleanly without binding."""
    g = ctx.guest
    alias = g.balloon_sysfs("modalias") or ""
    expect(alias.startswith("virtio:d00000005"), f"modalias {alias!r}")
    table = g.check("cat /lib/modules/$(uname -r)/modules.alias")
    owners = sorted({ln.split()[-1] for ln in table.splitlines()
                     if ln.startswith("alias virtio:d00000005")})
    expect(owners == ["balloon_virtio", "virtio_balloon"],
           f"modules claiming the balloon alias: {owners}")
    for first, second in (("balloon_virtio", "virtio_balloon"),
                          ("virtio_balloon", "balloon_virtio")):
        g.check(f"modprobe {first} && modprobe {second}")
        bound = g.balloon_driver()
        expect(bound == first, f"loaded {first} then {second}: the device "
               f"is bound to {bound}")
        g.check(f"rmmod {second} && rmmod {first}")
    g.check("rmmod balloon_core")
    ctx.info(f"{alias} -> {owners}; the first loaded keeps the device")


@rigtest(mode="none", needs_modules=True, smoke=True)
def test_ours_load_unload(ctx: Context) -> None:
    """Load and unload our modules; no oops/WARNING allowed."""
    g = ctx.guest
    present = {p.name.removesuffix(".ko") for p in ctx.our_modules}
    expect("balloon_core" in present,
           f"no balloon_core.ko among {sorted(present)}")
    g.check("modprobe balloon_core")
    expect("balloon_core" in g.modules(), "balloon_core not in /proc/modules")
    for mod in ("balloon_vmw", "balloon_virtio"):
        if mod in present:
            rc, out = g.run(f"modprobe {mod}")
            ctx.info(f"modprobe {mod}: rc={rc} {out.strip()[-200:]}")
    ctx.info(f"balloon device bound to: {g.balloon_driver()}")
    loaded = g.modules()
    for mod in reversed(OUR_MODULES):
        if mod in loaded:
            g.check(f"rmmod {mod}")
    left = g.modules() & set(OUR_MODULES)
    expect(not left, f"still loaded after rmmod: {sorted(left)}")
    ctx.log("taint: " + g.read_file("/proc/sys/kernel/tainted").strip())


PARAMS = "/sys/module/balloon_core/parameters"


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_load_parameters(ctx: Context) -> None:
    """Parameters given at load are judged together, whatever their order:
    a bad one is clamped or ignored with one log line and the module
    loads.  Later, a bad write through sysfs is refused."""
    g = ctx.guest
    # (modprobe arguments, values then, warnings logged), from defaults
    # alloc_min 512, alloc_max 2048, range 1..65536.
    cases = (
        ("alloc_min=4096 alloc_max=8192", (4096, 8192), 0),
        ("alloc_max=8192 alloc_min=4096", (4096, 8192), 0),
        ("alloc_min=4096", (2048, 2048), 1),
        ("alloc_min=4096 alloc_max=100000", (4096, 65536), 1),
        ("alloc_min=lots alloc_max=8192", (512, 8192), 1),
    )
    for n, (args, want, warned) in enumerate(cases):
        mark = f"balloon-test: load {n}"
        g.check(f"echo '{mark}' > /dev/kmsg && modprobe balloon_core {args}")
        got = tuple(int(g.read_file(f"{PARAMS}/{p}"))
                    for p in ("alloc_min", "alloc_max"))
        log = g.dmesg().split(mark, 1)[1]
        # (Not the taint lines the first load of the module logs.)
        lines = [ln for ln in log.splitlines()
                 if "balloon_core: alloc_" in ln]
        g.check("rmmod balloon_core")
        expect(got == want, f"modprobe balloon_core {args}: alloc_min, "
               f"alloc_max = {got}, expected {want}")
        expect(len(lines) == warned, f"modprobe balloon_core {args}: "
               f"{len(lines)} log lines, expected {warned}: {lines}")
        ctx.log(f"{args} -> {got} {lines}")

    g.check("modprobe balloon_core")
    rc, _ = g.run(f"echo 70000 > {PARAMS}/alloc_max")
    expect(rc != 0, "a write of alloc_max=70000 was accepted")
    rc, _ = g.run(f"echo 4096 > {PARAMS}/alloc_min")
    expect(rc != 0, "a write of alloc_min=4096 above alloc_max was accepted")
    got = g.read_file(f"{PARAMS}/alloc_max").strip()
    expect(got == "2048", f"alloc_max is {got} after refused writes")
    g.check("rmmod balloon_core")
    ctx.info(f"{len(cases)} load-time combinations loaded; bad sysfs "
             "writes refused")


TRACE_EVENTS = ("balloon_core_target", "balloon_core_inflate",
                "balloon_core_deflate", "balloon_core_refused",
                "balloon_core_reset", "balloon_core_pressure",
                "balloon_core_reclaiming")


@rigtest(mode="ours", needs_modules=True, mem_mib=1024,
         expect_driver="balloon_virtio")
def test_ours_tracepoints(ctx: Context) -> None:
    """Our tracepoints, read through tracefs: the target the host set, and
    inflate and deflate batches that add up to the balloon's moves."""
    g = ctx.guest
    tr = "/sys/kernel/tracing"
    g.check(f"[ -e {tr}/trace ] || mount -t tracefs nodev {tr}")
    events = set(g.check(f"ls {tr}/events/balloon_core").split())
    expect(set(TRACE_EVENTS) <= events,
           f"tracefs has {sorted(events)}, expected {TRACE_EVENTS}")
    g.check(f"echo 1 > {tr}/events/balloon_core/enable && echo > {tr}/trace")

    full = g.spec.mem_mib * MIB
    units = 64 * MIB // 4096        # targets: 4 KiB units
    pages = 64 * MIB // g.page_size  # batches: the guest's pages
    move_balloon(ctx, full - 64 * MIB, "inflate")
    move_balloon(ctx, full, "deflate")
    g.check(f"echo 0 > {tr}/events/balloon_core/enable")
    text = g.check(f"cat {tr}/trace")

    targets = [int(f["target"])
               for f in trace_fields(text, "balloon_core_target")]
    expect(units in targets and 0 in targets,
           f"targets traced: {sorted(set(targets))}, expected {units} and 0")
    infl = trace_fields(text, "balloon_core_inflate")
    defl = trace_fields(text, "balloon_core_deflate")
    put = sum(int(f["done"]) << int(f["order"]) for f in infl)
    took = sum(int(f["done"]) << int(f["order"]) for f in defl)
    expect(put == pages and took == pages,
           f"traced {put} pages in and {took} out, expected {pages} each")
    expect(all(f["ret"] == "0" for f in infl + defl),
           f"failed batches: {[f for f in infl + defl if f['ret'] != '0']}")
    ctx.info(f"{len(infl)} inflate and {len(defl)} deflate batches traced, "
             f"{put} pages each way")


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_vmw_not_vmware(ctx: Context) -> None:
    """Off VMware, modprobe balloon_vmw fails with ENODEV: it loads nothing
    else (no vmw_vmci), logs nothing, and balloon_core still unloads.  On
    arm64 it is not built at all (the backdoor is an x86 I/O port)."""
    g = ctx.guest
    present = {p.name.removesuffix(".ko") for p in ctx.our_modules}
    if g.arch != "x86_64":
        expect("balloon_vmw" not in present and "balloon_core" in present,
               f"built for {g.arch}: {sorted(present)}")
        rc, out = g.run("modprobe balloon_vmw")
        expect(rc != 0 and "not found" in out,
               f"modprobe balloon_vmw on {g.arch}: rc={rc} {out.strip()!r}")
        ctx.info(f"{g.arch}: no balloon_vmw.ko; modprobe: {out.strip()}")
        return
    expect("balloon_vmw" in present,
           f"no balloon_vmw.ko among {sorted(present)}")
    before = g.check("dmesg").count("\n")
    rc, out = g.run("modprobe balloon_vmw")
    expect(rc != 0 and "No such device" in out,
           f"modprobe balloon_vmw: rc={rc} {out.strip()!r}")
    loaded = g.modules()
    expect("balloon_vmw" not in loaded and "vmw_vmci" not in loaded,
           f"loaded after the failed modprobe: {sorted(loaded)}")
    said = [ln for ln in g.check("dmesg").splitlines()[before:]
            if "balloon_vmw" in ln or "vmw_vmci" in ln]
    expect(not said, f"kernel log: {said}")
    expect("balloon_core" in loaded, "balloon_core was not pulled in")
    g.check("rmmod balloon_core")
    expect("balloon_core" not in g.modules(), "balloon_core still loaded")
    ctx.info(f"modprobe balloon_vmw: {out.strip()}")


def _balloon_modalias(ctx: Context) -> str:
    """Return the modalias of the guest's virtio balloon device (id 5)."""
    out = ctx.guest.balloon_sysfs("modalias")
    expect(out, "no virtio balloon device in the guest")
    return out.split()[0]


def _modprobe_plan(ctx: Context, args: str) -> list[str]:
    """Return the modules ``modprobe -D args`` would insert, in order."""
    out = ctx.guest.check(f"modprobe -D {args}")
    return [initramfs.modname(ln.split()[1]) for ln in out.splitlines()
            if ln.startswith("insmod ")]


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_modprobe_blacklist(ctx: Context) -> None:
    """With our modprobe.d file installed (the tree's, or the one
    --modprobe-conf names), resolving the balloon device's modalias (as
    udev does) loads balloon_core and balloon_virtio, and not the in-tree
    virtio_balloon."""
    g = ctx.guest
    alias = _balloon_modalias(ctx)
    expect(g.balloon_driver() is None,
           f"balloon device already bound to {g.balloon_driver()}")
    # Without the file both drivers match the alias: the blacklist matters.
    before = _modprobe_plan(ctx, alias)
    expect("virtio_balloon" in before and "balloon_virtio" in before,
           f"without the blacklist {alias} resolves to {before}, expected "
           f"both virtio_balloon and balloon_virtio")

    conf = base64.b64encode(ctx.modprobe_conf.read_bytes()).decode()
    g.check(f"mkdir -p /etc/modprobe.d && echo {conf} | base64 -d "
            f"> /etc/modprobe.d/{ctx.modprobe_conf.name}")
    after = _modprobe_plan(ctx, f"-b {alias}")
    ours = [m for m in after if m in OUR_MODULES]
    expect(ours == ["balloon_core", "balloon_virtio"] and
           "virtio_balloon" not in after,
           f"with the blacklist {alias} resolves to {after}")

    g.check(f"modprobe -b {alias}")
    loaded = g.modules()
    expect({"balloon_core", "balloon_virtio"} <= loaded and
           "virtio_balloon" not in loaded,
           f"modprobe -b {alias} loaded {sorted(loaded)}")
    drivers = set(g.check("ls /sys/bus/virtio/drivers").split())
    expect("virtio_balloon" not in drivers,
           f"virtio_balloon registered: {sorted(drivers)}")
    bound = g.balloon_driver()
    expect(bound == "balloon_virtio", f"balloon device bound to {bound}")
    ctx.info(f"{alias}: {' '.join(before)} without the blacklist, "
             f"{' '.join(after)} with {ctx.modprobe_conf}; bound to {bound}")
