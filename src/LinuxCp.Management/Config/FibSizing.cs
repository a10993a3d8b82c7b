using DpdkSharp;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Management.Observe;

namespace LinuxCp.Management.Config;

/// <summary>How big the default table is made, and why (a line for the log when it was scaled down).</summary>
public sealed record FibPlan(FibCapacity V4, FibCapacity V6, long Bytes, string? Note);

/// <summary>Sizes the default FIB table to the memory EAL was given. The FIB keeps two copies
/// of each family (writers never touch the copy workers read), and an rte_fib instance costs
/// a tbl24 (32 MiB for IPv4, 64 MiB for IPv6) plus ~0.4 KiB per route of capacity and ~0.5/1 KiB
/// per tbl8 group: the defaults (1M IPv4, 256k IPv6, 16k/64k tbl8 groups) need about 1.4 GiB. When they do not fit, they are scaled down, with one log line; sizes given on
/// the launch line are taken as asked, or refused with the memory they need and what to change.</summary>
public static class FibSizing
{
    /// <summary>Kept free for what is created after the FIB (mirror queues, capture, other tables).</summary>
    public const long Reserve = 48L << 20;

    /// <summary>The smallest default table lcpd scales down to.</summary>
    public const uint MinRoutes = 4096;

    /// <summary>Bytes of EAL memory free now: the heap's free bytes, plus the free hugepages it
    /// can still grow into (with hugepages, EAL's memory is dynamic unless capped).</summary>
    public static long AvailableEalMemory()
    {
        long free = 0;
        for (int sock = 0; sock < 8; sock++)
            free += (long)Eal.HeapStats(sock).Free;
        if (Eal.HasHugepages)
        {
            var (_, _, hpFree, hpSize) = ProcFs.Memory();
            free += hpFree * hpSize;
        }
        return free;
    }

    private static long Need(IFibBackend b, FibCapacity v4, FibCapacity v6) => 2 * (b.EstimateBytes(false, v4) + b.EstimateBytes(true, v6));

    public static FibPlan Plan(uint? routes4, uint? routes6, uint? tbl8, IFibBackend backend, long available, uint? tbl8v6 = null)
    {
        var v4 = new FibCapacity(routes4 ?? LaunchOptions.DefaultFibRoutes, tbl8 ?? LaunchOptions.DefaultFibTbl8);
        uint t6 = tbl8v6 ?? (tbl8 is uint t ? Math.Min(backend.MaxTbl8(true), 4 * t) : LaunchOptions.DefaultFib6Tbl8);
        var v6 = new FibCapacity(routes6 ?? LaunchOptions.DefaultFib6Routes, t6);
        long need = Need(backend, v4, v6);
        long room = available - Reserve;
        if (need <= room)
            return new FibPlan(v4, v6, need, null);
        if (routes4 is not null || routes6 is not null || tbl8 is not null || tbl8v6 is not null)
        {
            var asked = new List<string>();
            if (routes4 is not null)
                asked.Add($"--fib-routes {routes4}");
            if (routes6 is not null)
                asked.Add($"--fib6-routes {routes6}");
            if (tbl8 is not null)
                asked.Add($"--fib-tbl8 {tbl8}");
            if (tbl8v6 is not null)
                asked.Add($"--fib6-tbl8 {tbl8v6}");
            throw new FibCapacityException(
                $"the FIB as asked ({string.Join(" ", asked)}: {v4.Routes} IPv4 / {v6.Routes} IPv6 routes, {v4.Tbl8} / {v6.Tbl8} tbl8 groups) needs {Mib(need)} MiB of EAL memory for its two copies, and EAL has {Mib(Math.Max(0, room))} MiB to spare: give EAL more memory (-m <MiB>, or hugepages) or lower {string.Join("/", asked.Select(a => a.Split(' ')[0]))}");
        }
        // Scale the defaults down together (IPv6 stays a quarter of IPv4, tbl8 groups in proportion).
        double f = 1;
        FibCapacity s4 = v4, s6 = v6;
        while (true)
        {
            f *= 0.9;
            uint r4 = (uint)Math.Max(MinRoutes, v4.Routes * f);
            s4 = new FibCapacity(r4, (uint)Math.Clamp(v4.Tbl8 * f, 256, v4.Tbl8));
            s6 = new FibCapacity((uint)Math.Max(MinRoutes / 4, v6.Routes * f), (uint)Math.Clamp(v6.Tbl8 * f, 256, v6.Tbl8));
            long n = Need(backend, s4, s6);
            if (n <= room)
                return new FibPlan(s4, s6, n, $"FIB sized to {s4.Routes} IPv4 / {s6.Routes} IPv6 routes and {s4.Tbl8} / {s6.Tbl8} tbl8 groups to fit the {Mib(room)} MiB EAL has to spare (the default {v4.Routes} / {v6.Routes} needs {Mib(need)} MiB: give EAL more memory with -m or hugepages, or set --fib-routes/--fib6-routes); a full table grows when memory allows");
            if (r4 == MinRoutes)
                throw new FibCapacityException(
                    $"the FIB needs at least {Mib(n)} MiB of EAL memory (two copies of the IPv4 and IPv6 tables, with 32 and 64 MiB of tbl24), and EAL has {Mib(Math.Max(0, room))} MiB to spare: give EAL more memory (-m <MiB>, or hugepages), or run with --no-fib");
        }
    }

    private static long Mib(long b) => (b + (1 << 20) - 1) >> 20;
}
