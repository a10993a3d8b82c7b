namespace LinuxCp.Dataplane.Lcore;

/// <summary>Loop behaviour shared by all workers.</summary>
public sealed record WorkerOptions
{
    public const int BurstSize = 64;

    /// <summary>Per-path cycles and packet latency are measured on one loop iteration in this
    /// many (a power of two); calls and packets are counted on every one.</summary>
    public const int SampleEvery = 16;

    /// <summary>Punt unknown ethertypes (LLDP, LACP, ...) to the mirror; drop them if false.</summary>
    public bool PuntOther { get; init; } = true;

    /// <summary>0 = poll without pause (production). Otherwise sleep this long after
    /// <see cref="IdleLoopsBeforeSleep"/> empty iterations (shared CPUs, demos, tests).</summary>
    public uint IdleSleepMicros { get; init; }

    public uint IdleLoopsBeforeSleep { get; init; } = 1024;
}
