using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;

namespace LinuxCp.Dataplane.Tables;

/// <summary>The tags of a sub-interface: one 802.1Q tag (<see cref="Inner"/> 0), or two (QinQ:
/// an outer tag of <see cref="Tpid"/> 0x88A8 or 0x8100, an inner 802.1Q tag). Frames match on
/// the exact tag stack; the priority bits are not matched and are sent as 0.</summary>
public readonly record struct VlanTags(ushort Tpid, ushort Outer, ushort Inner = 0)
{
    public const ushort Dot1q = 0x8100, Dot1ad = 0x88A8;

    public bool QinQ => Inner != 0;

    /// <summary>Bytes the tags take on the wire.</summary>
    public int Bytes => QinQ ? 8 : 4;

    public static bool ValidVid(int vid) => vid is >= 1 and <= 4094;

    /// <summary>The tags as they are written after the MAC addresses (wire order, low bytes first).</summary>
    public ulong Wire
    {
        get
        {
            ulong outer = (ulong)BinaryPrimitives.ReverseEndianness(QinQ ? Tpid : Dot1q) | ((ulong)BinaryPrimitives.ReverseEndianness(Outer) << 16);
            if (!QinQ)
                return outer;
            ulong inner = (ulong)BinaryPrimitives.ReverseEndianness(Dot1q) | ((ulong)BinaryPrimitives.ReverseEndianness(Inner) << 16);
            return outer | (inner << 32);
        }
    }

    public override string ToString() => QinQ ? $"{(Tpid == Dot1ad ? "dot1ad" : "dot1q")} {Outer} inner-dot1q {Inner}" : $"dot1q {Outer}";
}

/// <summary>A sub-interface as the dataplane knows it: its id, its parent port, its tags, and
/// how its frames are received (its entry: paired with a mirror or not, down, table).</summary>
public readonly record struct SubInterface(ushort Id, ushort Parent, VlanTags Tags, PollEntry Entry);

/// <summary>The tag-to-sub-interface maps of one parent port: 802.1Q by VID, and QinQ by outer
/// TPID and VID then inner VID (4096-entry arrays of interface ids, 0 for none; 8 KiB each).</summary>
public sealed class VlanDemux
{
    internal readonly ushort[] Single = new ushort[4096];
    internal readonly ushort[]?[] Outer8100 = new ushort[]?[4096];
    internal readonly ushort[]?[] Outer88a8 = new ushort[]?[4096];

    /// <summary>Frames with tags no sub-interface has are left to the parent (punted to its
    /// mirror as received) instead of dropped as vlan-unknown.</summary>
    public bool PuntUnknown { get; init; }

    /// <summary>The port's driver loses the outer TPID: the kernel hands an af_packet socket
    /// the outer tag as metadata, and DPDK's af_packet PMD puts it back as 802.1Q whatever it
    /// was. A double-tagged frame whose outer tag reads 802.1Q then also matches an 802.1ad
    /// sub-interface of those VIDs (one of 802.1Q outer, if there is one, first).</summary>
    public bool OuterTpidLost { get; init; }

    internal void Add(ushort id, VlanTags t)
    {
        if (!t.QinQ)
        {
            Single[t.Outer] = id;
            return;
        }
        ushort[]?[] outer = t.Tpid == VlanTags.Dot1ad ? Outer88a8 : Outer8100;
        (outer[t.Outer] ??= new ushort[4096])[t.Inner] = id;
    }

    /// <summary>The sub-interface a frame belongs to by its tags (0: none) and how many bytes of
    /// tags it carries; -1 when it is untagged (or too short to read them: the classifier decides).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal unsafe int Match(byte* f, uint len, out ushort id)
    {
        id = 0;
        if (len < 18)
            return -1;
        ushort t1 = BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 12));
        if (t1 is not (VlanTags.Dot1q or VlanTags.Dot1ad))
            return -1;
        int vid1 = BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 14)) & 0xFFF;
        ushort t2 = BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 16));
        if (t2 == VlanTags.Dot1q)
        {
            if (len < 22)
                return 0;
            ushort[]? inner = (t1 == VlanTags.Dot1ad ? Outer88a8 : Outer8100)[vid1];
            if (inner is null && OuterTpidLost && t1 == VlanTags.Dot1q)
                inner = Outer88a8[vid1];
            if (inner is not null)
                id = inner[BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 18)) & 0xFFF];
            return 8;
        }
        if (t1 == VlanTags.Dot1q && t2 != VlanTags.Dot1ad)
            id = Single[vid1];
        return 4;
    }
}

/// <summary>The sub-interfaces of every port, published with the poll table: the demux maps per
/// parent (RX), and per sub-interface its receive entry and the tags to push (TX).</summary>
public sealed class VlanTable
{
    public static readonly VlanTable Empty = new([]);

    internal readonly VlanDemux?[] Demux = new VlanDemux?[EthPort.MaxPorts];
    internal readonly PollEntry[] Entries = new PollEntry[Interfaces.MaxSubs];
    internal readonly ushort[] Parent = new ushort[Interfaces.MaxSubs];
    internal readonly ulong[] Tags = new ulong[Interfaces.MaxSubs];
    internal readonly byte[] TagBytes = new byte[Interfaces.MaxSubs];

    /// <param name="tpidLost">parent ports whose driver loses the outer TPID (<see cref="VlanDemux.OuterTpidLost"/>)</param>
    public VlanTable(IEnumerable<SubInterface> subs, bool puntUnknown = false, Func<ushort, bool>? tpidLost = null)
    {
        foreach (SubInterface s in subs)
        {
            if (!Interfaces.IsSub(s.Id) || s.Id >= Interfaces.Max || s.Parent >= EthPort.MaxPorts)
                throw new ArgumentException($"sub-interface id {s.Id} / parent {s.Parent} out of range");
            int i = s.Id - Interfaces.FirstSub;
            (Demux[s.Parent] ??= new VlanDemux { PuntUnknown = puntUnknown, OuterTpidLost = tpidLost?.Invoke(s.Parent) == true }).Add(s.Id, s.Tags);
            Entries[i] = s.Entry;
            Parent[i] = s.Parent;
            Tags[i] = s.Tags.Wire;
            TagBytes[i] = (byte)s.Tags.Bytes;
        }
    }

    /// <summary>Whether a port has sub-interfaces (its frames are demultiplexed first).</summary>
    public bool HasSubs(ushort port) => port < EthPort.MaxPorts && Demux[port] is not null;

    /// <summary>Splits a burst received on a parent port. Untagged frames (and, with
    /// <see cref="VlanDemux.PuntUnknown"/>, frames of unknown tags) stay in <paramref name="pkts"/>,
    /// compacted in order; a sub-interface's frames lose their tags and go to
    /// <paramref name="subPkts"/> with its id in <paramref name="subIds"/>; frames of unknown tags
    /// go to <paramref name="drop"/> (the caller counts them as vlan-unknown). Adds the tagged
    /// frames' bytes (as received) to <paramref name="taggedBytes"/>. Returns how many stay.</summary>
    public static unsafe uint Split(VlanDemux d, void** pkts, uint n, void** subPkts, ushort* subIds, ref uint nSub,
        void** drop, ref uint nDrop, ref long taggedBytes)
    {
        uint kept = 0;
        for (uint i = 0; i < n; i++)
        {
            void* m = pkts[i];
            byte* f = Mbuf.Data(m);
            int tagBytes = d.Match(f, Mbuf.DataLen(m), out ushort id);
            if (tagBytes < 0)
            {
                pkts[kept++] = m;
                continue;
            }
            if (id == 0)
            {
                if (d.PuntUnknown)
                {
                    pkts[kept++] = m;
                }
                else
                {
                    taggedBytes += Mbuf.PktLen(m);
                    drop[nDrop++] = m;
                }
                continue;
            }
            taggedBytes += Mbuf.PktLen(m);
            // Pop: the 12 bytes of MAC addresses move up over the tags.
            ulong macs = *(ulong*)f;
            uint tail = *(uint*)(f + 8);
            *(ulong*)(f + tagBytes) = macs;
            *(uint*)(f + tagBytes + 8) = tail;
            Mbuf.Adj(m, (ushort)tagBytes);
            subPkts[nSub] = m;
            subIds[nSub] = id;
            nSub++;
        }
        return kept;
    }

    /// <summary>Pushes sub-interface <paramref name="id"/>'s tags onto each frame (after the MAC
    /// addresses). A frame without the headroom goes to <paramref name="drop"/>. Returns how many
    /// remain, compacted in order; <paramref name="parent"/>: the port they leave on.</summary>
    public unsafe uint Push(ushort id, void** pkts, uint n, void** drop, ref uint nDrop, out ushort parent)
    {
        int i = id - Interfaces.FirstSub;
        parent = Parent[i];
        ulong tags = Tags[i];
        int bytes = TagBytes[i];
        uint kept = 0;
        for (uint k = 0; k < n; k++)
        {
            void* m = pkts[k];
            if (Mbuf.Headroom(m) < bytes || Mbuf.DataLen(m) < 12)
            {
                drop[nDrop++] = m;
                continue;
            }
            byte* f = Mbuf.Prepend(m, (ushort)bytes);
            ulong macs = *(ulong*)(f + bytes);
            uint tail = *(uint*)(f + bytes + 8);
            *(ulong*)f = macs;
            *(uint*)(f + 8) = tail;
            if (bytes == 4)
                *(uint*)(f + 12) = (uint)tags;
            else
                *(ulong*)(f + 12) = tags;
            pkts[kept++] = m;
        }
        return kept;
    }

    /// <summary>The receive entry of a sub-interface.</summary>
    public ref readonly PollEntry Entry(ushort id) => ref Entries[id - Interfaces.FirstSub];

    /// <summary>Bytes of tags a sub-interface's frames carry.</summary>
    public int TagBytesOf(ushort id) => TagBytes[id - Interfaces.FirstSub];
}
