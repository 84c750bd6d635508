// Compile-only stub for tests: mirrors the public signature of com.google.common.util.concurrent.ListenableFuture, Guava 33 (listenablefuture 1.0).
package com.google.common.util.concurrent;

import java.util.concurrent.Executor;
import java.util.concurrent.Future;

public interface ListenableFuture<V> extends Future<V> {
    void addListener(Runnable listener, Executor executor);
}
