namespace LinuxCp.Dataplane.Fib;

/// <summary>The FIB instances workers look up in; replaced (never modified) by the control plane.</summary>
public sealed unsafe class FibSnapshot
{
    public static readonly FibSnapshot None = new(null, null, null);

    public void* V4 { get; }
    public void* V6 { get; }
    public NextHopTables? Tables { get; }

    public FibSnapshot(void* v4, void* v6, NextHopTables? tables)
    {
        V4 = v4;
        V6 = v6;
        Tables = tables;
    }

    public bool Enabled => Tables is not null;
}
