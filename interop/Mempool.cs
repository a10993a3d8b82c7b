using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>A packet-mbuf mempool.</summary>
public sealed unsafe class Mempool
{
    public void* Handle { get; }
    public string Name { get; }
    public uint Size { get; }

    private Mempool(void* handle, string name, uint size)
    {
        Handle = handle;
        Name = name;
        Size = size;
    }

    /// <summary>Creates a pktmbuf pool. Without hugepages the pool is created with
    /// RTE_MEMPOOL_F_NO_IOVA_CONTIG so mbufs are packed densely.</summary>
    public static Mempool CreatePktmbuf(string name, uint count, uint cache, ushort dataRoom, int socket)
    {
        using var n = new NativeUtf8(name);
        void* mp = LcpShim.lcp_pktmbuf_pool_create(n.Pointer, count, cache, dataRoom, socket, Eal.HasHugepages ? 0 : 1);
        if (mp == null)
        {
            int err = Eal.LastErrno;
            throw new DpdkException($"cannot create mbuf pool '{name}' ({count} mbufs): {Eal.StrError(err)}", err);
        }
        return new Mempool(mp, name, count);
    }

    public uint InUse => Dpdk.rte_mempool_in_use_count(Handle);

    public uint Available => Dpdk.rte_mempool_avail_count(Handle);
}
