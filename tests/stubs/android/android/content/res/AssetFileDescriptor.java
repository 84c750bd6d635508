// Compile-only stub for tests: mirrors the public signature of android.content.res.AssetFileDescriptor, Android API level 36.
package android.content.res;

import java.io.Closeable;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;

public class AssetFileDescriptor implements Closeable {
    public FileDescriptor getFileDescriptor() { throw new UnsupportedOperationException("stub"); }
    public long getStartOffset() { throw new UnsupportedOperationException("stub"); }
    public long getDeclaredLength() { throw new UnsupportedOperationException("stub"); }
    public long getLength() { throw new UnsupportedOperationException("stub"); }
    public FileInputStream createInputStream() throws IOException { throw new UnsupportedOperationException("stub"); }
    public void close() throws IOException {}
}
