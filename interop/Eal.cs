using System.Runtime.InteropServices;
using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>The Environment Abstraction Layer: init, lcores, errors.</summary>
public static unsafe class Eal
{
    // rte_eal_init keeps pointers into argv for the process lifetime: never freed.
    private static byte** s_argv;
    private static int s_initialized;

    public static bool Initialized => Volatile.Read(ref s_initialized) != 0;

    /// <summary>The EAL arguments given to <see cref="Init"/> (for <c>show dpdk</c>).</summary>
    public static IReadOnlyList<string> Arguments { get; private set; } = [];

    /// <summary>DPDK malloc heap of a socket: total, free and allocated bytes (zeros if unknown).</summary>
    public static (ulong Total, ulong Free, ulong Allocated) HeapStats(int socket)
    {
        ulong t, f, a;
        return LcpShim.lcp_heap_stats(socket, &t, &f, &a) == 0 ? (t, f, a) : (0, 0, 0);
    }

    /// <summary>Calls rte_eal_init with argv[0] = <paramref name="program"/>. Returns the number
    /// of arguments EAL consumed, or throws with EAL's reason.</summary>
    public static int Init(string program, IReadOnlyList<string> ealArgs)
    {
        if (Interlocked.Exchange(ref s_initialized, 1) != 0)
            throw new InvalidOperationException("EAL is already initialized");
        int argc = ealArgs.Count + 1;
        s_argv = (byte**)NativeMemory.AllocZeroed((nuint)(argc + 1), (nuint)sizeof(byte*));
        s_argv[0] = new NativeUtf8(program).Pointer;
        for (int i = 0; i < ealArgs.Count; i++)
            s_argv[i + 1] = new NativeUtf8(ealArgs[i]).Pointer;
        Arguments = [.. ealArgs];
        int rc = Dpdk.rte_eal_init(argc, s_argv);
        if (rc < 0)
        {
            int err = LastErrno;
            Volatile.Write(ref s_initialized, 0);
            throw new DpdkException($"EAL init failed: {StrError(err)}", err);
        }
        return rc;
    }

    public static void Cleanup()
    {
        if (Interlocked.Exchange(ref s_initialized, 0) != 0)
            Dpdk.rte_eal_cleanup();
    }

    /// <summary>rte_errno of the calling thread.</summary>
    public static int LastErrno => LcpShim.lcp_rte_errno();

    public static string StrError(int errno) => NativeUtf8.Read(Dpdk.rte_strerror(errno)) ?? $"errno {errno}";

    /// <summary>DPDK's version string, e.g. "DPDK 22.11.11".</summary>
    public static string Version => NativeUtf8.Read(Dpdk.rte_version()) ?? "unknown";

    /// <summary>Sets one DPDK log type's level (RTE_LOG_*: 1 emergency .. 8 debug); returns the
    /// previous level, or a negative errno.</summary>
    public static int SetLogLevel(string type, uint level)
    {
        using var n = new NativeUtf8(type);
        return LcpShim.lcp_log_set_level(n.Pointer, level);
    }

    public static bool HasHugepages => Dpdk.rte_eal_has_hugepages() != 0;

    public static uint MainLcore => Dpdk.rte_get_main_lcore();

    public static uint LcoreCount => Dpdk.rte_lcore_count();

    /// <summary>Enabled worker lcores (the main lcore excluded), in id order.</summary>
    public static List<uint> WorkerLcores()
    {
        var list = new List<uint>();
        // RTE_MAX_LCORE is the sentinel rte_get_next_lcore returns at the end.
        uint id = Dpdk.rte_get_next_lcore(uint.MaxValue, 1, 0);
        while (id < Layouts.RTE_MAX_LCORE)
        {
            list.Add(id);
            id = Dpdk.rte_get_next_lcore(id, 1, 0);
        }
        return list;
    }

    /// <summary>CPUs an lcore is pinned to, as a bitmask of CPUs 0..63.</summary>
    public static ulong LcoreCpus(uint lcore) => LcpShim.lcp_lcore_cpuset(lcore);

    public static void RemoteLaunch(delegate* unmanaged<void*, int> entry, void* arg, uint lcore)
        => DpdkException.Check(Dpdk.rte_eal_remote_launch(entry, arg, lcore), $"launch on lcore {lcore}");

    /// <summary>Blocks until the lcore finished; returns its entry's return value.</summary>
    public static int WaitLcore(uint lcore) => Dpdk.rte_eal_wait_lcore(lcore);

    public static ulong TscHz => LcpShim.lcp_tsc_hz();

    public static ulong Rdtsc() => LcpShim.lcp_rdtsc();

    /// <summary>Records the CPUs the process was started on (taskset, cgroup); call before
    /// <see cref="Init"/>, which pins the calling thread.</summary>
    public static int SaveInitialAffinity() => LcpShim.lcp_save_initial_affinity();

    /// <summary>Pins the calling thread to every CPU not in <paramref name="exclude"/>
    /// (all CPUs if that leaves none). Threads it creates later inherit this.</summary>
    public static int SetControlAffinity(ulong exclude) => LcpShim.lcp_thread_set_control_affinity(exclude);

    /// <summary>The calling thread's kernel thread id.</summary>
    public static int ThreadId() => LcpShim.lcp_gettid();

    /// <summary>Pins every thread of the process except <paramref name="keep"/> (kernel thread
    /// ids) as <see cref="SetControlAffinity"/> would. Returns how many were pinned.</summary>
    public static unsafe int PinOtherThreads(ulong exclude, int[] keep)
    {
        fixed (int* k = keep)
            return LcpShim.lcp_pin_other_threads(exclude, k, keep.Length);
    }
}
