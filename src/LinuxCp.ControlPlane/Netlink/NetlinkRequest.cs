using System.Buffers.Binary;
using System.Text;
using DpdkSharp;

namespace LinuxCp.ControlPlane.Netlink;

/// <summary>One rtnetlink request and its acknowledgement: the control plane's own changes to
/// Linux (a mirror's carrier, admin state, MTU). The config layer's channel shares the ACK parser.</summary>
public static class NetlinkRequest
{
    /// <summary>RTM_NEWLINK changing link <paramref name="ifindex"/>: admin state, carrier
    /// (IFLA_CARRIER: the kernel's tun/tap driver takes it while a queue is attached), MTU.
    /// Null leaves a property alone.</summary>
    public static NetlinkWriter SetLink(int ifindex, bool? up = null, bool? carrier = null, uint? mtu = null)
    {
        var w = new NetlinkWriter().Begin(Nl.NewLink, Nl.FRequest | Nl.FAck);
        Span<byte> h = stackalloc byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], ifindex);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], up == true ? Nl.IffUp : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], up is null ? 0 : Nl.IffUp);
        w.Bytes(h);
        if (carrier is bool c)
            w.U8(Nl.IflaCarrier, c ? (byte)1 : (byte)0);
        if (mtu is uint m)
            w.U32(Nl.IflaMtu, m);
        return w;
    }

    private const ushort IflaNetNsFd = 28, IflaNumTxQueues = 31, IflaNumRxQueues = 32, VethInfoPeer = 1;

    /// <summary>RTM_NEWLINK creating a veth pair: <paramref name="name"/> here, its peer
    /// <paramref name="peerName"/> in the namespace open as <paramref name="peerNsFd"/> (-1: here
    /// too) with MAC <paramref name="peerMac"/> (0: the kernel's) and <paramref name="mtu"/>; both
    /// with <paramref name="queues"/> queue pairs.</summary>
    public static NetlinkWriter CreateVeth(string name, string peerName, int peerNsFd, uint mtu, ulong peerMac, uint queues)
    {
        var w = new NetlinkWriter().Begin(Nl.NewLink, Nl.FRequest | Nl.FAck | Nl.FCreate | Nl.FExcl);
        w.Bytes(stackalloc byte[16]);
        w.Str(Nl.IflaIfname, name);
        w.U32(Nl.IflaMtu, mtu);
        w.U32(IflaNumTxQueues, queues).U32(IflaNumRxQueues, queues);
        w.BeginNest(Nl.IflaLinkinfo).Str(Nl.IflaInfoKind, "veth").BeginNest(Nl.IflaInfoData).BeginNest(VethInfoPeer);
        w.Bytes(stackalloc byte[16]);
        w.Str(Nl.IflaIfname, peerName);
        w.U32(Nl.IflaMtu, mtu);
        w.U32(IflaNumTxQueues, queues).U32(IflaNumRxQueues, queues);
        if (peerMac != 0)
            w.Mac(Nl.IflaAddress, peerMac);
        if (peerNsFd >= 0)
            w.U32(IflaNetNsFd, (uint)peerNsFd);
        w.EndNest().EndNest().EndNest();
        return w;
    }

    /// <summary>RTM_DELLINK of the link named <paramref name="name"/>.</summary>
    public static NetlinkWriter DeleteLink(string name)
    {
        var w = new NetlinkWriter().Begin(Nl.DelLink, Nl.FRequest | Nl.FAck);
        w.Bytes(stackalloc byte[16]);
        w.Str(Nl.IflaIfname, name);
        return w;
    }

    /// <summary>Sends <paramref name="w"/> in <paramref name="netns"/> (null: ours) and waits for
    /// the kernel's answer. Throws <see cref="IOException"/> naming <paramref name="what"/> and
    /// the kernel's reason when it refuses or does not answer in 5 s.</summary>
    public static void Run(string? netns, NetlinkWriter w, string what)
    {
        const uint Seq = 0x4c435300;
        byte[] msg = w.End().ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(msg.AsSpan(8), Seq);
        NetlinkSocket s;
        try
        {
            s = new NetlinkSocket(netns, 0, 1 << 16);
        }
        catch (DpdkException e)
        {
            throw new IOException($"{what}: {e.Message}", e);
        }
        using (s)
        {
            var buf = new byte[1 << 14];
            try
            {
                s.Send(msg);
            }
            catch (DpdkException e)
            {
                throw new IOException($"{what}: {e.Message}", e);
            }
            long deadline = Environment.TickCount64 + 5000;
            while (Environment.TickCount64 < deadline)
            {
                int n = s.Receive(buf, 1000);
                if (n is -11 or -4)
                    continue;
                if (n < 0)
                    throw new IOException($"{what}: netlink receive failed: {Eal.StrError(-n)}");
                if (TryFindAck(buf.AsSpan(0, n), Seq, out int errno, out string? ext))
                {
                    if (errno != 0)
                        throw new IOException($"{what}: {Eal.StrError(errno)}{(ext is null ? "" : $" ({ext})")}");
                    return;
                }
            }
            throw new IOException($"{what}: no answer from the kernel in 5 s");
        }
    }

    /// <summary>Finds the NLMSG_ERROR answering <paramref name="seq"/> in a datagram: its errno (0:
    /// an ACK) and the extended-ack text (NLMSGERR_ATTR_MSG) when the kernel gave one.</summary>
    public static bool TryFindAck(ReadOnlySpan<byte> b, uint seq, out int errno, out string? ext)
    {
        errno = 0;
        ext = null;
        while (b.Length >= Nl.HeaderSize)
        {
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(b);
            if (len < Nl.HeaderSize || len > b.Length)
                return false;
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(b[4..]);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
            uint s = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
            if (type == Nl.Error && s == seq && len >= Nl.HeaderSize + 4 + Nl.HeaderSize)
            {
                ReadOnlySpan<byte> body = b[Nl.HeaderSize..(int)len];
                errno = -BinaryPrimitives.ReadInt32LittleEndian(body);
                // The original request follows: its header only when capped (0x100), then TLVs (0x200).
                if ((flags & 0x200) != 0)
                {
                    int orig = (flags & 0x100) != 0 ? Nl.HeaderSize : (int)BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
                    int at = 4 + ((orig + 3) & ~3);
                    if (at <= body.Length)
                    {
                        var attrs = new NetlinkParser.Attrs(body[at..]);
                        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
                            if (t == 1)
                                ext = Encoding.UTF8.GetString(p.IndexOf((byte)0) is int z and >= 0 ? p[..z] : p);
                    }
                }
                return true;
            }
            int aligned = (int)((len + 3) & ~3u);
            if (aligned >= b.Length)
                break;
            b = b[aligned..];
        }
        return false;
    }
}
