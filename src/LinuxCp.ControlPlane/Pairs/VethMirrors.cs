using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;

namespace LinuxCp.ControlPlane.Pairs;

/// <summary>Veth mirrors ("fast mirrors"): instead of a TAP (where the TAP PMD moves one packet per
/// read or write system call), a veth pair: its far end in lcpd's namespace is a dataplane port
/// served by af_packet with TPACKET rings and qdisc bypass (a system call per burst) or by XDP
/// sockets; its near end, in the mirror namespace under the host-if name with the port's MAC, is
/// what Linux uses. The near end computes its own checksums (transmit checksum offload off, and
/// with it TSO: the dataplane cannot segment) and keeps GRO on for what it receives.</summary>
public sealed partial class PairManager
{
    private Pair MakeVethMirror(PortInfo phy, string hostIf, string? ns, MirrorKind kind)
    {
        bool xdp = kind == MirrorKind.VethXdp;
        string dp;
        do
            dp = $"lcpv{++_mirrorSeq}";
        while (Netns.IfIndex(null, dp) > 0); // left by an lcpd that crashed: pick another name
        if (xdp)
            GuardPoolRoom(hostIf); // an XDP socket keeps its fill ring posted with mbufs
        GuardPortIpv6(phy, hostIf, phy.Mac);
        ushort mtu = EthPort.Mtu(phy.DpdkPort);
        uint queues = (uint)_dp.WorkerCount;
        Microsoft.Win32.SafeHandles.SafeFileHandle? nsFd = null;
        try
        {
            if (ns is not null)
                nsFd = File.OpenHandle($"/run/netns/{ns}");
            NetlinkRequest.Run(null, NetlinkRequest.CreateVeth(dp, hostIf, nsFd is null ? -1 : (int)nsFd.DangerousGetHandle(),
                mtu == 0 ? 1500u : mtu, phy.Mac.Bits, queues), $"create veth mirror {hostIf} (dataplane end {dp})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PairException($"cannot create veth mirror {hostIf} in {NsLabel(ns)}: {e.Message}");
        }
        finally
        {
            nsFd?.Dispose();
        }
        ushort mirrorId = ushort.MaxValue;
        try
        {
            // The dataplane end belongs to lcpd, like a NIC bound to DPDK: nothing of Linux's there.
            foreach (var (path, value) in s_quiet)
                Netns.Sysctl(null, string.Format(System.Globalization.CultureInfo.InvariantCulture, path, dp), value, out _);
            NetlinkRequest.Run(null, NetlinkRequest.SetLink(Netns.IfIndex(null, dp), up: true), $"set {dp} up");
            // Linux's end fills its own checksums (the dataplane forwards frames as they are) and
            // so sends no TSO super-frames; GRO batches what it receives.
            int crc = Netns.Ethtool(ns, hostIf, Netns.EthtoolSetTxChecksum, 0);
            if (crc < 0)
                throw new IOException($"transmit checksum offload on {hostIf} not turned off: {Eal.StrError(-crc)}");
            Netns.Ethtool(ns, hostIf, Netns.EthtoolSetGro, 1);
            NetlinkRequest.Run(ns, NetlinkRequest.SetLink(Netns.IfIndex(ns, hostIf), up: true), $"set {hostIf} up");
            string dev = xdp ? $"net_af_xdp_{dp}" : $"net_af_packet_{dp}";
            string devargs = xdp ? $"{dev},iface={dp},queue_count={queues}" : $"{dev},iface={dp},qpairs={queues},qdisc_bypass=1";
            int rc = Netns.ProbeDevice(null, devargs);
            if (rc < 0 || !EthPort.TryGetByName(dev, out mirrorId))
                throw new IOException($"cannot open {dp} with {(xdp ? "af_xdp" : "af_packet")}: {(rc < 0 ? Eal.StrError(-rc) : "no port")}");
            _dp.ClearPortCounters(mirrorId);
            EthPort.Setup(mirrorId, (ushort)_dp.WorkerCount, RxDescriptors, TxDescriptors, _pool);
            EthPort.Promiscuous(mirrorId);
        }
        catch (Exception e) when (e is IOException or DpdkException)
        {
            if (mirrorId != ushort.MaxValue)
                EthPort.Remove(mirrorId);
            DeleteVethQuietly(dp);
            throw new PairException($"cannot set up veth mirror {hostIf}: {e.Message}");
        }
        var mirror = new PortInfo(mirrorId, hostIf, PortKind.Veth, phy.Mac, EthPort.Driver(mirrorId));
        int ifindex = Netns.IfIndex(ns, hostIf);
        return new Pair(phy, mirror, hostIf, ns, false, ifindex, false, NetnsInode: Netns.Inode(ns), Kind: kind, VethPeer: dp);
    }

    /// <summary>Deletes a veth mirror's dataplane end (its peer, Linux's end, goes with it); gone already is fine.</summary>
    private void DeleteVethQuietly(string dp)
    {
        try
        {
            NetlinkRequest.Run(null, NetlinkRequest.DeleteLink(dp), $"delete {dp}");
        }
        catch (IOException e)
        {
            if (Netns.IfIndex(null, dp) > 0)
                Log.MirrorRemoveFailed(_log, dp, e.Message);
        }
    }
}
