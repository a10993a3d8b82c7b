using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Pairs;
using Microsoft.Extensions.Logging.Abstractions;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>lcp-sync: a port's link state reaching its mirror's carrier, with the hold-down.</summary>
public sealed class LinkSyncTests
{
    private static readonly PortInfo Phy0 = new(0, "net_af_packet0", PortKind.Phy, new MacAddress(0x0000_0000_0002_aa02UL), "net_af_packet");
    private static readonly PortInfo Tap0 = new(2, "lcp0", PortKind.Tap, Phy0.Mac, "net_tap");

    private readonly List<Pair> _pairs = [new Pair(Phy0, Tap0, "lcp0", "rt", false, 7, false)];
    private readonly List<(string HostIf, int IfIndex, bool Up)> _set = [];
    private bool _link = true;
    private string? _fail;

    private LinkSync Make(int holdDownMs = 0) => new(() => _pairs, NullLogger.Instance, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(holdDownMs))
    {
        ReadLink = _ => _link,
        SetCarrier = (p, up) =>
        {
            if (_fail is not null)
                throw new IOException(_fail);
            _set.Add((p.HostIf, p.HostIfIndex, up));
        },
    };

    [Fact]
    public void FirstTick_GivesTheMirrorThePortsLink_ThenOnlyChanges()
    {
        using LinkSync s = Make();
        _link = false;
        s.Tick(0);
        Assert.Equal([("lcp0", 7, false)], _set);
        s.Tick(100);
        Assert.Single(_set);
        _link = true;
        s.Tick(200);
        Assert.Equal(("lcp0", 7, true), _set[^1]);
        LinkSyncStatus st = s.Status(0)!;
        Assert.True(st.PortLinkUp);
        Assert.True(st.MirrorCarrier);
        Assert.Equal(1, st.Changes); // the initial setting is not a change
        Assert.False(st.Pending);
    }

    [Fact]
    public void HoldDown_AFlapShorterThanIt_NeverReachesTheMirror()
    {
        using LinkSync s = Make(holdDownMs: 500);
        s.Tick(0);
        Assert.Equal([("lcp0", 7, true)], _set);
        _link = false;
        s.Tick(100);
        s.Tick(300);
        Assert.True(s.Status(0)!.Pending);
        _link = true;
        s.Tick(400); // back before the hold-down ran out
        s.Tick(1000);
        Assert.Single(_set);
        Assert.False(s.Status(0)!.Pending);

        _link = false;
        s.Tick(1100);
        s.Tick(1500);
        Assert.Single(_set); // 400 ms down: still held
        s.Tick(1600);
        Assert.Equal(("lcp0", 7, false), _set[^1]);
        Assert.Equal(1, s.Status(0)!.Changes);
    }

    [Fact]
    public void RecreatedMirror_GetsTheCarrierAgain_AndADownPairIsLeftAlone()
    {
        using LinkSync s = Make();
        _link = false;
        s.Tick(0);
        _pairs[0] = _pairs[0] with { State = PairState.Down, DownReason = "mirror deleted" };
        s.Tick(100);
        Assert.Single(_set);
        _pairs[0] = _pairs[0] with { State = PairState.Up, HostIfIndex = 9 };
        s.Tick(200);
        Assert.Equal(("lcp0", 9, false), _set[^1]);
    }

    [Fact]
    public void RefusedCarrier_IsRetriedAtEveryPoll_AndReported()
    {
        using LinkSync s = Make();
        _fail = "carrier off on lcp0: Operation not permitted";
        s.Tick(0);
        Assert.Empty(_set);
        Assert.Equal(_fail, s.Status(0)!.Error);
        Assert.Null(s.Status(0)!.MirrorCarrier);
        _fail = null;
        s.Tick(100);
        Assert.Equal([("lcp0", 7, true)], _set);
        Assert.Null(s.Status(0)!.Error);
    }

    [Fact]
    public void DeletedPair_IsForgotten()
    {
        using LinkSync s = Make();
        s.Tick(0);
        Assert.NotNull(s.Status(0));
        _pairs.Clear();
        s.Tick(100);
        Assert.Null(s.Status(0));
    }

    [Fact]
    public void SetLinkRequest_CarriesCarrierMtuAndAdminChange()
    {
        byte[] m = NetlinkRequest.SetLink(12, up: false, carrier: true, mtu: 1400).End().ToArray();
        Assert.Equal(Nl.NewLink, BitConverter.ToUInt16(m, 4));
        Assert.Equal(12, BitConverter.ToInt32(m, 16 + 4));
        Assert.Equal(0u, BitConverter.ToUInt32(m, 16 + 8)); // flags: down
        Assert.Equal(Nl.IffUp, BitConverter.ToUInt32(m, 16 + 12)); // change mask: IFF_UP
        var attrs = new NetlinkParser.Attrs(m.AsSpan(32));
        var seen = new Dictionary<ushort, byte[]>();
        while (attrs.Next(out ushort t, out ReadOnlySpan<byte> p))
            seen[t] = p.ToArray();
        Assert.Equal([1], seen[Nl.IflaCarrier]);
        Assert.Equal(1400u, BitConverter.ToUInt32(seen[Nl.IflaMtu]));
        byte[] only = NetlinkRequest.SetLink(3, carrier: false).End().ToArray();
        Assert.Equal(0u, BitConverter.ToUInt32(only, 16 + 12)); // admin state untouched
    }

    [Fact]
    public void TryFindAck_ReadsErrnoOfItsSequenceOnly()
    {
        byte[] Ack(uint seq, int err)
        {
            var b = new byte[36];
            BitConverter.TryWriteBytes(b.AsSpan(0), 36u);
            BitConverter.TryWriteBytes(b.AsSpan(4), Nl.Error);
            BitConverter.TryWriteBytes(b.AsSpan(8), seq);
            BitConverter.TryWriteBytes(b.AsSpan(16), -err);
            BitConverter.TryWriteBytes(b.AsSpan(20), 16u);
            return b;
        }
        byte[] two = [.. Ack(5, 0), .. Ack(6, 1)];
        Assert.True(NetlinkRequest.TryFindAck(two, 6, out int errno, out _));
        Assert.Equal(1, errno);
        Assert.True(NetlinkRequest.TryFindAck(two, 5, out errno, out _));
        Assert.Equal(0, errno);
        Assert.False(NetlinkRequest.TryFindAck(two, 7, out _, out _));
        Assert.False(NetlinkRequest.TryFindAck(two.AsSpan(0, 20), 5, out _, out _)); // truncated
    }
}
