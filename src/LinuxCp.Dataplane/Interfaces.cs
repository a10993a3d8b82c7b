namespace LinuxCp.Dataplane;

/// <summary>The dataplane's interface ids: a DPDK port's id (below <see cref="DpdkSharp.EthPort.MaxPorts"/>)
/// or a sub-interface's (VLAN / QinQ of a port, from MaxPorts up). Counters, TX buffers, features
/// and adjacencies are indexed by it; only DPDK ports have queues.</summary>
public static class Interfaces
{
    /// <summary>Interface ids in all: 32 DPDK ports and 224 sub-interfaces (a flow's zone is one byte).</summary>
    public const int Max = 256;

    public const int FirstSub = DpdkSharp.EthPort.MaxPorts;

    public const int MaxSubs = Max - FirstSub;

    public static bool IsSub(ushort id) => id >= FirstSub;
}
