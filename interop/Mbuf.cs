using System.Runtime.CompilerServices;
using static DpdkSharp.Native.Layouts;

namespace DpdkSharp;

/// <summary>Direct field access on an rte_mbuf through the generated offsets. The hot path keeps
/// mbufs as raw pointers; these helpers inline to single loads/stores.</summary>
public static unsafe class Mbuf
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte* Data(void* m) => *(byte**)((byte*)m + rte_mbuf_buf_addr) + *(ushort*)((byte*)m + rte_mbuf_data_off);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort DataLen(void* m) => *(ushort*)((byte*)m + rte_mbuf_data_len);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint PktLen(void* m) => *(uint*)((byte*)m + rte_mbuf_pkt_len);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Headroom(void* m) => *(ushort*)((byte*)m + rte_mbuf_data_off);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Port(void* m) => *(ushort*)((byte*)m + rte_mbuf_port);

    /// <summary>rte_pktmbuf_adj: drops <paramref name="len"/> bytes from the front. The caller
    /// checked len &lt;= data_len.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adj(void* m, ushort len)
    {
        byte* b = (byte*)m;
        *(ushort*)(b + rte_mbuf_data_off) += len;
        *(ushort*)(b + rte_mbuf_data_len) -= len;
        *(uint*)(b + rte_mbuf_pkt_len) -= len;
    }

    /// <summary>rte_pktmbuf_prepend: grows the packet at the front. The caller checked
    /// len &lt;= headroom. Returns the new data start.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte* Prepend(void* m, ushort len)
    {
        byte* b = (byte*)m;
        *(ushort*)(b + rte_mbuf_data_off) -= len;
        *(ushort*)(b + rte_mbuf_data_len) += len;
        *(uint*)(b + rte_mbuf_pkt_len) += len;
        return Data(m);
    }
}
