using System.Runtime.InteropServices;
using System.Text;

namespace DpdkSharp;

/// <summary>A NUL-terminated UTF-8 copy of a string in native memory, freed on dispose.
/// Cold paths only (setup, control plane).</summary>
public readonly unsafe struct NativeUtf8 : IDisposable
{
    public readonly byte* Pointer; // NOSONAR

    public NativeUtf8(string? value)
    {
        if (value is null)
        {
            Pointer = null;
            return;
        }
        int n = Encoding.UTF8.GetByteCount(value);
        Pointer = (byte*)NativeMemory.Alloc((nuint)n + 1);
        fixed (char* c = value)
            Encoding.UTF8.GetBytes(c, value.Length, Pointer, n);
        Pointer[n] = 0;
    }

    public void Dispose()
    {
        if (Pointer != null)
            NativeMemory.Free(Pointer);
    }

    public static string? Read(byte* p) => p == null ? null : Marshal.PtrToStringUTF8((nint)p);
}
