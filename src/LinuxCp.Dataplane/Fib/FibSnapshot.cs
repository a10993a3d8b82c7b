namespace LinuxCp.Dataplane.Fib;

/// <summary>What workers look up in: one IPv4 and one IPv6 lookup structure per dataplane table
/// (by dense table index; 0 where a table has none), and the group and path arrays their results
/// index. Replaced, never modified, by the FIB writer.</summary>
public sealed unsafe class FibSnapshot
{
    /// <summary>Dense dataplane table indexes run from 0 (the default table) to this, exclusive.</summary>
    public const int MaxTables = 64;

    /// <summary>A slot never given to a table: a port bound to it has no FIB, so everything IP
    /// it receives is punted to Linux (what a namespace gets whose table could not be opened).</summary>
    public const int PuntTable = MaxTables - 1;

    public static readonly FibSnapshot None = new(new nint[MaxTables], new nint[MaxTables], null, null);

    /// <summary>Per table index: the IPv4 lookup structure (an rte_fib), or 0.</summary>
    public nint[] V4 { get; }

    /// <summary>Per table index: the IPv6 lookup structure (an rte_fib6), or 0.</summary>
    public nint[] V6 { get; }

    public GroupEntry* Groups { get; }
    public PathEntry* Paths { get; }

    public FibSnapshot(nint[] v4, nint[] v6, GroupEntry* groups, PathEntry* paths)
    {
        if (v4.Length != MaxTables || v6.Length != MaxTables)
            throw new ArgumentException($"a snapshot has {MaxTables} table slots");
        V4 = v4;
        V6 = v6;
        Groups = groups;
        Paths = paths;
    }

    public bool Enabled => Groups != null;
}
