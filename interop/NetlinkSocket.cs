
using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>An rtnetlink socket bound inside a namespace.</summary>
public sealed unsafe class NetlinkSocket : IDisposable
{
    private int _fd;
    private int _wake;

    public NetlinkSocket(string? netns, uint groups, int receiveBuffer)
    {
        using var ns = new NativeUtf8(netns);
        _fd = LcpShim.lcp_netlink_open(ns.Pointer, groups, receiveBuffer);
        if (_fd < 0)
            throw new DpdkException($"netlink socket in {netns ?? "the default namespace"}: {Eal.StrError(-_fd)}", -_fd);
        _wake = LcpShim.lcp_wakeup_open();
        if (_wake < 0)
        {
            int err = -_wake;
            LcpShim.lcp_netlink_close(_fd);
            throw new DpdkException($"eventfd: {Eal.StrError(err)}", err);
        }
    }

    /// <summary>Makes a pending (or the next) <see cref="Receive"/> return -EINTR at once.</summary>
    public void Wake()
    {
        if (_wake >= 0)
            LcpShim.lcp_wakeup_signal(_wake);
    }

    public void Send(byte[] msg)
    {
        fixed (byte* p = msg)
            DpdkException.Check(LcpShim.lcp_netlink_send(_fd, p, (uint)msg.Length), "netlink send");
    }

    /// <summary>Bytes received, or a negative errno (-11 EAGAIN after the timeout, -105 ENOBUFS on
    /// overrun, -4 EINTR after <see cref="Wake"/>). A timeout of -1 waits until a message or a wake.</summary>
    public int Receive(byte[] buf, int timeoutMs)
    {
        fixed (byte* p = buf)
            return LcpShim.lcp_netlink_recv(_fd, _wake, p, (uint)buf.Length, timeoutMs);
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            LcpShim.lcp_netlink_close(_fd);
            LcpShim.lcp_netlink_close(_wake);
            _fd = -1;
            _wake = -1;
        }
    }
}
