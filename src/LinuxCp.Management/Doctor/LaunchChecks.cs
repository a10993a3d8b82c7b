using LinuxCp.ControlPlane.Host;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Management.Config;
using static LinuxCp.Management.Doctor.Checklist;

namespace LinuxCp.Management.Doctor;

/// <summary>The checks of a launch line before EAL starts (lcpd --check, and lcpd's own refusals).</summary>
public static class LaunchChecks
{
    /// <summary>Bytes one mbuf of lcpd's pool takes in EAL memory (data room, headroom, header, pool overhead).</summary>
    public const long MbufBytes = 2432;

    /// <summary>EAL memory lcpd will have for its tables: what -m gives (or the free hugepages),
    /// less the mbuf pool. Null when it cannot be known (hugepages without -m on a host without any).</summary>
    public static long? AvailableForTables(HostFacts h, LaunchFacts f, LaunchOptions o)
    {
        long? total = f.MemoryMiB is long m ? m << 20
            : f.Hugepages ? h.Hugepages().Sum(s => s.Free * s.SizeKiB * 1024)
            : 64L << 20; // EAL's default with --no-huge
        if (total is null or 0)
            return null;
        return total - o.Mbufs * MbufBytes - (2L << 20);
    }

    /// <summary>Do the FIB sizes asked for fit the memory EAL is given?</summary>
    public static CheckDto Memory(HostFacts h, LaunchFacts f, LaunchOptions o)
    {
        if (!o.Fib)
            return new("memory", Skip, "no FIB (--no-fib)", null);
        long? avail = AvailableForTables(h, f, o);
        if (avail is null)
            return new("memory", Skip, "EAL's memory is not known before it starts (no -m and no free hugepages)", null);
        if (avail <= 0)
            return new("memory", Fail, $"the mbuf pool ({o.Mbufs} mbufs, {o.Mbufs * MbufBytes >> 20} MiB) does not fit the memory EAL is given",
                "give EAL more memory (-m <MiB>) or lower --mbufs");
        try
        {
            FibPlan plan = FibSizing.Plan(o.FibRoutes, o.Fib6Routes, o.FibTbl8, new RteFibBackend(0), avail.Value, o.Fib6Tbl8);
            return plan.Note is string note
                ? new("memory", Warn, $"(estimate) {note}", "give EAL more memory (-m <MiB> or hugepages) for the default table sizes")
                : new("memory", Ok, $"(estimate) the FIB ({plan.V4.Routes} IPv4 / {plan.V6.Routes} IPv6 routes) needs {plan.Bytes >> 20} MiB of the {avail >> 20} MiB EAL will have after the mbuf pool", null);
        }
        catch (FibCapacityException e)
        {
            return new("memory", Fail, $"(estimate) {e.Message}", "raise -m, or lower the sizes named");
        }
    }

    /// <summary>The full checklist of a launch line.</summary>
    public static DoctorDto Run(HostFacts h, LaunchOptions o)
    {
        LaunchFacts f = Checklist.FromEal(o.EalArgs, o.KeepPortIpv6);
        DoctorDto d = Checklist.Run(h, f, null);
        List<CheckDto> checks = [.. d.Checks, Memory(h, f, o)];
        return d with
        {
            Checks = checks,
            Ok = checks.Count(c => c.Status == Checklist.Ok),
            Warn = checks.Count(c => c.Status == Checklist.Warn),
            Fail = checks.Count(c => c.Status == Checklist.Fail),
            Skip = checks.Count(c => c.Status == Checklist.Skip),
        };
    }
}
