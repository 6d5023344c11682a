
cevt-1ùÊ¯cmp-1842R
acct-42Spring sale