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

    [LoggerMessage(1038, LogLevel.Information, "netlink ({Netns}): the FIB's second copy took the resync's {Writes} writes in {Seconds} s")]
    public static partial void SecondCopy(ILogger log, string netns, long writes, double seconds);

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

    [LoggerMessage(1023, LogLevel.Information, "port {Port}: IPv6 turned off on its kernel interface {KernelIf}, which has the MAC of mirror {HostIf} and so its link-local address (their DAD would collide; --keep-port-ipv6 leaves it on)")]
    public static partial void PortIpv6Off(ILogger log, string port, string kernelIf, string hostIf);

    [LoggerMessage(1024, LogLevel.Warning, "port {Port}: its kernel interface {KernelIf} keeps IPv6 (--keep-port-ipv6) with the MAC of mirror {HostIf}: the mirror's link-local address may fail DAD; turn it off with sysctl -w net.ipv6.conf.{KernelIf}.disable_ipv6=1 or give the port another MAC (--port-mac)")]
    public static partial void PortIpv6Kept(ILogger log, string port, string kernelIf, string hostIf);

    [LoggerMessage(1025, LogLevel.Warning, "port {Port}: cannot turn IPv6 off on its kernel interface {KernelIf} ({Error}): mirror {HostIf} may fail DAD; run sysctl -w net.ipv6.conf.{KernelIf}.disable_ipv6=1")]
    public static partial void PortIpv6OffFailed(ILogger log, string port, string kernelIf, string hostIf, string error);

    [LoggerMessage(1026, LogLevel.Warning, "this kernel has no multiq qdisc (CONFIG_NET_SCH_MULTIQ): TAP mirrors run without rte_flow support, which lcpd does not use; the TAP driver's errors about it are muted")]
    public static partial void NoMultiq(ILogger log);

    [LoggerMessage(1027, LogLevel.Warning, "mirror {HostIf} in {Netns}: IPv6 address {Address} failed duplicate address detection (another node, or the kernel interface under the port, has it): Linux sends no ND from it and IPv6 through the port fails; {Fix}")]
    public static partial void DadFailed(ILogger log, string hostIf, string netns, string address, string fix);

    [LoggerMessage(1028, LogLevel.Information, "port {Port} link {State}: carrier {Carrier} on its mirror {HostIf}")]
    public static partial void CarrierSynced(ILogger log, string port, string state, string hostIf, string carrier);

    [LoggerMessage(1029, LogLevel.Warning, "port {Port}: cannot set the carrier of its mirror {HostIf}: {Reason} (retried)")]
    public static partial void CarrierFailed(ILogger log, string port, string hostIf, string reason);

    [LoggerMessage(1030, LogLevel.Warning, "link sync: {Reason}")]
    public static partial void LinkSyncFailed(ILogger log, string reason);

    [LoggerMessage(1031, LogLevel.Information, "port {Name} (id {Id}) attached to {Ifname} in {Netns} ({Mac}): its kernel side is quiet (no IPv6, no ARP replies, no forwarding) until it is detached")]
    public static partial void PortAttached(ILogger log, string name, ushort id, string ifname, string netns, string mac);

    [LoggerMessage(1032, LogLevel.Information, "port {Name} detached from {Ifname} in {Netns}: its kernel settings restored")]
    public static partial void PortDetached(ILogger log, string name, string ifname, string netns);

    [LoggerMessage(1033, LogLevel.Warning, "attached interface {Ifname}: {Path} not changed: {Reason}")]
    public static partial void AttachSysctlFailed(ILogger log, string ifname, string path, string reason);

    [LoggerMessage(1034, LogLevel.Information, "bond {Name} (port {Port}) created: {Mode}, hash {Hash}, members {Members}")]
    public static partial void BondCreated(ILogger log, string name, ushort port, string mode, string hash, string members);

    [LoggerMessage(1035, LogLevel.Warning, "bond {Name}: member {Member} lost its link ({Ifname} has no carrier): taken out of the bond, its traffic moves to the other members")]
    public static partial void BondMemberDown(ILogger log, string name, string member, string ifname);

    [LoggerMessage(1036, LogLevel.Information, "bond {Name}: member {Member} has its link back ({Ifname}): re-opened and added to the bond")]
    public static partial void BondMemberUp(ILogger log, string name, string member, string ifname);

    [LoggerMessage(1037, LogLevel.Warning, "bond {Name}: cannot {Action} member {Member}: {Reason} (retried)")]
    public static partial void BondMemberFailed(ILogger log, string name, string member, string action, string reason);
}
