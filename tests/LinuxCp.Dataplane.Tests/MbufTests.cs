using System.Runtime.InteropServices;
using DpdkSharp;
using DpdkSharp.Native;

namespace LinuxCp.Dataplane.Tests;

/// <summary>Mbuf accessors on a synthetic mbuf laid out with the generated offsets.</summary>
public unsafe class MbufTests : IDisposable
{
    private readonly byte* _mem;
    private readonly void* _m;

    public MbufTests()
    {
        _mem = (byte*)NativeMemory.AllocZeroed(Layouts.SizeOf_rte_mbuf + 2048);
        _m = _mem;
        *(byte**)(_mem + Layouts.rte_mbuf_buf_addr) = _mem + Layouts.SizeOf_rte_mbuf;
        *(ushort*)(_mem + Layouts.rte_mbuf_data_off) = 128;
        *(ushort*)(_mem + Layouts.rte_mbuf_data_len) = 60;
        *(uint*)(_mem + Layouts.rte_mbuf_pkt_len) = 60;
    }

    public void Dispose() => NativeMemory.Free(_mem);

    [Fact]
    public void Data_PointsAtBufAddrPlusDataOff() =>
        Assert.Equal((nint)(_mem + Layouts.SizeOf_rte_mbuf + 128), (nint)Mbuf.Data(_m));

    [Fact]
    public void Adj_ThenPrepend_RestoresLayout()
    {
        byte* before = Mbuf.Data(_m);
        Mbuf.Adj(_m, 14);
        Assert.Equal(46, Mbuf.DataLen(_m));
        Assert.Equal(46u, Mbuf.PktLen(_m));
        Assert.Equal(142, Mbuf.Headroom(_m));
        byte* after = Mbuf.Prepend(_m, 14);
        Assert.Equal((nint)before, (nint)after);
        Assert.Equal(60, Mbuf.DataLen(_m));
        Assert.Equal(60u, Mbuf.PktLen(_m));
    }
}

public class MacAddressTests
{
    [Fact]
    public void TryParse_RoundTrips()
    {
        Assert.True(MacAddress.TryParse("02:ab:cd:00:10:ff", out MacAddress m));
        Assert.Equal("02:ab:cd:00:10:ff", m.ToString());
    }

    [Fact]
    public void Bits_WireOrderInLowBytes()
    {
        MacAddress m = MacAddress.FromBytes([0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        Assert.Equal(0x060504030201UL, m.Bits);
        Assert.Equal(1UL, m.Bits & 1); // I/G bit of byte 0
    }

    [Theory]
    [InlineData("")]
    [InlineData("02:00:00:00:00")]
    [InlineData("02:00:00:00:00:0g")]
    [InlineData("002:00:00:00:00:00")]
    public void TryParse_Malformed_False(string s) => Assert.False(MacAddress.TryParse(s, out _));
}
