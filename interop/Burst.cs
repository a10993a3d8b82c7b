using System.Runtime.CompilerServices;
using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>Fast-path burst calls: one native call per burst.</summary>
public static unsafe class Burst
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Rx(ushort port, ushort queue, void** pkts, ushort n) => LcpShim.lcp_rx_burst(port, queue, pkts, n);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Tx(ushort port, ushort queue, void** pkts, ushort n) => LcpShim.lcp_tx_burst(port, queue, pkts, n);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Free(void** pkts, uint n)
    {
        if (n != 0)
            Dpdk.rte_pktmbuf_free_bulk(pkts, n);
    }
}
