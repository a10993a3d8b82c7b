using DpdkSharp;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane;

namespace LinuxCp.Management.Api;

/// <summary>What the management layer reads and drives: the engine, the pairs, the pool.</summary>
public sealed record RouterState(DataplaneEngine Engine, PairManager Pairs, Mempool Pool, string Version, string DpdkVersion,
    LinuxCp.ControlPlane.Routing.RoutingService? Routing = null, bool DebugCommands = false);
