// Compile-only stub for tests: mirrors the public signature of android.widget.Button, Android API level 36.
package android.widget;

import android.content.Context;

public class Button extends TextView {
    public Button(Context context) { super(context); }
}
