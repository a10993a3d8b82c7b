using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane;

/// <summary>Control-plane log events (stable ids 1000-1099).</summary>
internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Information, "port {Name} (id {Id}, {Driver}, {Mac}) adopted")]
    public static partial void PortAdopted(ILogger log, string name, ushort id, string driver, string mac);

    [LoggerMessage(1001, LogLevel.Warning, "port {Name}: all-multicast not enabled: {Reason}")]
    public static partial void AllMultiUnsupported(ILogger log, string name, string reason);

    [LoggerMessage(1002, LogLevel.Information, "netns {Name} created")]
    public static partial void NetnsCreated(ILogger log, string name);

    [LoggerMessage(1008, LogLevel.Warning, "netns {Name} was created in lcpd's private mount namespace (lcpd runs under 'ip netns exec' or similar): other processes cannot see it. Create mirror namespaces beforehand with 'ip netns add {Name}'")]
    public static partial void NetnsPrivate(ILogger log, string name);

    [LoggerMessage(1010, LogLevel.Warning, "netlink ({Netns}): read error {Errno}; resyncing")]
    public static partial void NetlinkReadError(ILogger log, string netns, int errno);

    [LoggerMessage(1011, LogLevel.Error, "netlink ({Netns}): listener failed; resyncing")]
    public static partial void NetlinkFailed(ILogger log, string netns, Exception e);

    [LoggerMessage(1012, LogLevel.Information, "netlink ({Netns}): resync applied {Objects} objects, removed {Removed}, in {Seconds} s ({Rate} objects/s)")]
    public static partial void Resynced(ILogger log, string netns, long objects, int removed, double seconds, long rate);

    [LoggerMessage(1016, LogLevel.Information, "netlink ({Netns}): dump in progress: {Objects} objects read and applied in {Seconds} s ({Rate}/s), {Fib} prefixes in the FIB")]
    public static partial void DumpProgress(ILogger log, string netns, long objects, double seconds, long rate, int fib);

    [LoggerMessage(1017, LogLevel.Warning, "{Message}")]
    public static partial void FibWarning(ILogger log, string message);

    [LoggerMessage(1018, LogLevel.Warning, "pair {Port} <-> {HostIf}: {Reason}; the pair is down")]
    public static partial void PairDown(ILogger log, string port, string hostIf, string reason);

    [LoggerMessage(1019, LogLevel.Information, "pair {Port} <-> {HostIf}: mirror re-created in {Netns} (ifindex {IfIndex})")]
    public static partial void PairRecovered(ILogger log, string port, string hostIf, string netns, int ifIndex);

    [LoggerMessage(1020, LogLevel.Information, "pair {Port} <-> {HostIf}: adopted the existing persistent {Kind} in {Netns} (ifindex {IfIndex}): its addresses and routes are kept")]
    public static partial void PairAdopted(ILogger log, string port, string hostIf, string kind, string netns, int ifIndex);

    [LoggerMessage(1022, LogLevel.Warning, "netlink ({Netns}): the namespace is gone; its pairs are down until it is back")]
    public static partial void NetnsGone(ILogger log, string netns);

    [LoggerMessage(1021, LogLevel.Information, "port {Port} now forwards in table {Table} of {Netns} ({Source})")]
    public static partial void PortTable(ILogger log, string port, uint table, string netns, string source);

    [LoggerMessage(1013, LogLevel.Warning, "port {Port}: MTU {Mtu} from Linux not applied: {Reason}")]
    public static partial void PortMtuFailed(ILogger log, string port, ushort mtu, string reason);

    [LoggerMessage(1014, LogLevel.Warning, "port {Port}: MAC {Mac} from Linux not applied: {Reason}")]
    public static partial void PortMacFailed(ILogger log, string port, string mac, string reason);

    [LoggerMessage(1015, LogLevel.Warning, "port {Port}: the driver cannot change its MAC; {Mac} is used in software (L2 filter, rewrites, mirror)")]
    public static partial void PortMacSoftware(ILogger log, string port, string mac);

    [LoggerMessage(1003, LogLevel.Information, "pair {Port} <-> {HostIf} created in {Netns} ({Kind}, ifindex {IfIndex})")]
    public static partial void PairCreated(ILogger log, string port, string hostIf, string netns, string kind, int ifIndex);

    [LoggerMessage(1004, LogLevel.Information, "pair {Port} <-> {HostIf} deleted")]
    public static partial void PairDeleted(ILogger log, string port, string hostIf);

    [LoggerMessage(1005, LogLevel.Warning, "mirror {HostIf}: MTU {Mtu} not applied: {Reason}")]
    public static partial void MirrorMtuFailed(ILogger log, string hostIf, ushort mtu, string reason);

    [LoggerMessage(1006, LogLevel.Warning, "mirror {HostIf}: removal failed: {Reason}")]
    public static partial void MirrorRemoveFailed(ILogger log, string hostIf, string reason);

    [LoggerMessage(1007, LogLevel.Error, "a worker did not reach a quiescent point within the grace period")]
    public static partial void GraceTimeout(ILogger log);

    [LoggerMessage(1009, LogLevel.Error, "mirror {HostIf}: a worker did not reach a quiescent point within the grace period; the device stays open (unpolled) until one does")]
    public static partial void MirrorRemovalDeferred(ILogger log, string hostIf);
}
