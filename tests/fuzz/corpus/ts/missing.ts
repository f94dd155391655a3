@problemName q
@missing true
@univariate true
@seriesLength 3
@classLabel true 1 2
@data
1,?,3:1
NaN,2,3:2
