// Compile-only stub for tests: mirrors the public signature of org.tensorflow.lite.Delegate, LiteRT 1.4 (com.google.ai.edge.litert:litert).
package org.tensorflow.lite;

public interface Delegate extends AutoCloseable {
    long getNativeHandle();
    @Override
    default void close() {}
}
